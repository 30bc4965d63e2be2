"""The widgets in Notebook 7 (``jupyter notebook``), in Chromium, against the local platform.

The README promises "JupyterLab 4 or Notebook 7"; these tests hold it to that: a notebook
opened in Notebook 7 shows the widgets, a headless job launched from the LaunchForm reaches
Completed in the SessionTable, and the widgets are pictured at 900, 1280 and 1400 px in
light and dark (artifacts/screenshots/nb7-*.png), with legible text.

Controls are found by role and accessible name, as in test_widgets.py. Only the public
names of ``canfar_widgets`` are used in the notebooks.
"""

from __future__ import annotations

import secrets
import time

import pytest
from jlab import SCREENSHOTS, THEMES, WIDTHS, each_theme, low_contrast, screenshot
from nb7 import open_and_run

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
SETUP = """
from canfar_widgets import LaunchForm, Session, SessionTable
session = Session()
"""
# The table shows finished jobs too (their default may change; the tests need them shown).
WIDGETS = ["LaunchForm(session)", "SessionTable(session, hide_finished=False)"]


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def session_row(page, name):
    """The table row (<tr>) of the session called ``name`` (table scrolled into view first)."""
    page.locator(".cw-session-table").scroll_into_view_if_needed()
    return page.get_by_role("row").filter(has_text=name)


def test_launch_a_headless_job_from_the_form_in_notebook_7(nb7_page, notebook7, notebook):
    page = nb7_page
    name = unique("nb7-launch")
    open_and_run(page, notebook7, notebook(SETUP, *WIDGETS))
    # It is Notebook 7's notebook page, not JupyterLab's.
    assert "/notebooks/" in page.url
    assert page.locator("body[data-notebook='notebooks']").count() == 1

    form = page.get_by_role("form", name="Launch a CANFAR session")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Kind", exact=True).select_option("headless")
    # The kind's default image is kept (the local platform runs the command, whatever the
    # image). Typing over it races issue 15 item 1 (the emptied field snaps back to the
    # default, gluing two names), which belongs to the LaunchForm's own tests.
    assert form.get_by_label("Image", exact=True).input_value().startswith("images.canfar.net/")
    form.get_by_label("Command", exact=True).fill("echo")
    form.get_by_label("Arguments", exact=True).fill("hello from Notebook 7")
    form.get_by_role("button", name="Launch").click()

    # The table is a separate widget on the same session: it sees the job at its next poll.
    row = session_row(page, name)
    row.filter(has_text="Completed").wait_for(timeout=90_000)
    assert row.count() == 1
    assert row.get_by_role("button", name="Logs").is_visible()


SCENE = f"""
notebook_ids = session.create("analysis", image="images.canfar.net/skaha/astroml-notebook:latest",
                              kind="notebook")
done = session.create("reduce-night-1", image={TERMINAL!r}, cmd="echo", args="reduced 42 frames")
running = session.create("long-fit", image={TERMINAL!r}, cmd="sleep", args="600")
_ = session.wait(notebook_ids + running, until="Running", timeout=60)
_ = session.wait(done, until="finished", timeout=60)
"""
# Text that must stay legible in Notebook 7 too: (description, selector of the first one).
TEXTS = [
    ("form label", ".cw-launch label"),
    ("form hint", ".cw-launch .cw-lf-hint"),
    ("table name cell", ".cw-session-table td.cw-col-name"),
    ("table header", ".cw-session-table thead th button"),
    ("status Running", ".cw-session-table .cw-state-Running"),
    ("status Completed", ".cw-session-table .cw-state-Completed"),
]
# Where Settings > Theme saves the choice, under the server's user-settings folder.
THEME_SETTINGS = "@jupyterlab/apputils-extension/themes.jupyterlab-settings"


def test_widgets_at_three_widths_in_light_and_dark(nb7_page, notebook7, notebook):
    page = nb7_page
    page.set_viewport_size({"width": 1280, "height": 1600})
    open_and_run(page, notebook7, notebook(SETUP, SCENE, *WIDGETS))
    page.get_by_role("row").filter(has_text="reduce-night-1").filter(
        has_text="Completed"
    ).wait_for()
    page.get_by_role("row").filter(has_text="analysis").filter(has_text="Running").wait_for()

    failures = []
    pictures = []
    for tag in each_theme(page):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1600})
            table = page.locator(".cw-session-table").first
            table.scroll_into_view_if_needed()
            # What the person sees: the page as a whole, and each widget close up.
            path = SCREENSHOTS / f"nb7-page-{width}-{tag}.png"
            page.screenshot(path=str(path), animations="disabled")
            pictures.append(path)
            pictures.append(
                screenshot(page.locator(".cw-launch").first, f"nb7-launch-form-{width}-{tag}")
            )
            pictures.append(screenshot(table, f"nb7-session-table-{width}-{tag}"))
        failures += low_contrast(page, TEXTS, tag)
        # The theme applied to Notebook 7's page.
        light = page.evaluate("() => document.body.dataset.jpThemeLight")
        assert light == ("false" if tag == "dark" else "true"), (tag, light)
        if tag == "dark":
            # The choice was saved in the server's own settings folder, not in ~/.jupyter.
            saved = notebook7.settings_dir / THEME_SETTINGS
            deadline = time.monotonic() + 10
            while not (saved.exists() and '"JupyterLab Dark"' in saved.read_text()):
                assert time.monotonic() < deadline, f"Dark theme not saved in {saved}"
                time.sleep(0.2)
    assert len(pictures) == len(THEMES) * len(WIDTHS) * 3
    assert all(path.stat().st_size > 1000 for path in pictures)
    if failures:
        pytest.fail("text below WCAG AA contrast in Notebook 7:\n" + "\n".join(failures))
