"""The tab-title badge of alerts (js/lib/notify.js, issue 14), in Chromium.

A BatchView with "Notify me" on; the page is put in the background (headless Chromium
is always visible, so ``document.hidden``/``visibilityState`` are overridden and
``visibilitychange`` is dispatched, as a tab switch would); the batch's jobs wait for a
release file, which the test writes only then. The batch finishing puts "(1) " before the
tab's title (and the alert in the widget, permission not being granted here); showing the
page again gives the title back. JupyterLab 4 and Notebook 7. Screenshot:
artifacts/screenshots/alert-badge-*.png.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from jlab import screenshot
from notebook_pages import held_batch_setup

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"

CELL = """
from canfar_widgets import Batch, Session
from canfar_widgets.widgets._source import SessionSource
session = Session()
SessionSource.of(session).feed.fast = 0.5
batch = Batch.launch({name!r}, {image!r}, cmd=sys.executable, args={tmp!r} + "/job.py",
                     replicas=2, session=session, env={{"RELEASE": {tmp!r} + "/release"}})
batch
"""


# What a tab switch does to a page, for a page that cannot really be hidden.
SET_HIDDEN_JS = """
hidden => {
  if (!("__hidden" in window)) {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
    Object.defineProperty(document, "visibilityState", {
      configurable: true, get: () => (window.__hidden ? "hidden" : "visible") });
  }
  window.__hidden = hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}
"""


def test_a_background_tab_gets_a_badge_until_seen(front_end, notebook, tmp_path: Path):
    name = f"badge{secrets.token_hex(2)}"
    tmp = str(tmp_path)
    front_end.open_and_run(
        notebook(held_batch_setup(tmp) + CELL.format(tmp=tmp, name=name, image=TERMINAL))
    )
    page = front_end.page
    view = page.get_by_role("group", name=f"Batch {name}")
    view.wait_for()
    view.get_by_role("button", name="Notify me").click()
    view.get_by_role("button", name="Notifications on").wait_for()
    inbox = view.locator(".cw-notify-inbox")
    assert (inbox.text_content() or "").strip() == ""  # nothing to announce yet

    title = page.title()
    assert title and not title.startswith("(")
    page.evaluate(SET_HIDDEN_JS, True)
    (tmp_path / "release").write_text("go")

    # The finish, while in the background: a badge in the title, the alert in the widget.
    page.wait_for_function("() => document.title.startsWith('(')", timeout=90_000)
    assert page.title() == f"(1) {title}"
    inbox.filter(has_text=f"Batch {name} finished").wait_for()
    assert "2 Completed" in inbox.inner_text()
    screenshot(view, f"alert-badge-{front_end.tag}")

    # Seen again: the badge goes.
    page.evaluate(SET_HIDDEN_JS, False)
    assert page.title() == title
