"""LogViewer as a person uses it, in JupyterLab 4 and Notebook 7 (Chromium), light and dark,
900/1280/1400 px: sessions are picked by name (the id on hover), and follow mode keeps the
newest line in sight while a real job writes, through new widths and themes, while a
person who scrolls up to read is left where they are.

Screenshots: artifacts/screenshots/log-viewer-follow-<app>-<width>-<theme>.png.
"""

from __future__ import annotations

import contextlib
import re

import nb7
import pytest
from jlab import WIDTHS, each_theme, open_and_run, screenshot
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"

CELL = f"""
import os, tempfile
from canfar_widgets import LogViewer, Session
session = Session()
script = os.path.join(tempfile.mkdtemp(), "count.sh")
with open(script, "w") as fh:
    fh.write("#!/bin/sh\\ni=0\\nwhile [ $i -lt 3000 ]; do i=$((i+1)); "
             "echo \\"step $i: \\033[32mok\\033[0m loss=0.$i\\"; sleep 0.05; done\\n")
os.chmod(script, 0o755)
ids = session.create("multi2", image={TERMINAL!r}, cmd=script, replicas=2)
viewer = LogViewer(ids, session)
viewer
"""

# The last step number shown, and whether the <pre> is scrolled to its end.
_TAIL_JS = """pre => {
  const steps = [...pre.textContent.matchAll(/step (\\d+):/g)];
  return { last: steps.length ? Number(steps[steps.length - 1][1]) : 0,
           atEnd: pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8,
           overflows: pre.scrollHeight > pre.clientHeight };
}"""


def tail_after_new_lines(page, pre) -> dict:
    """Wait for lines newer than those shown now, then for the pump to have drawn them
    (a loaded machine draws late: give the box time to reach the end, which it never does
    if follow is broken); the tail's state then."""
    before = pre.evaluate(_TAIL_JS)["last"]
    page.wait_for_function(
        f"([pre, n]) => ({_TAIL_JS})(pre).last > n",
        arg=[pre.element_handle(), before],
        timeout=30_000,
    )
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            f"pre => ({_TAIL_JS})(pre).atEnd", arg=pre.element_handle(), timeout=10_000
        )
    return pre.evaluate(_TAIL_JS)


def check_names_and_follow(page, app: str) -> None:
    viewer = page.locator(".cw-logs").first
    viewer.scroll_into_view_if_needed()
    select = viewer.get_by_label("Session", exact=True)
    # The selector names the sessions as they were launched; the id is on hover.
    options = select.locator("option")
    options.first.wait_for(state="attached")
    page.wait_for_function(
        "el => [...el.options].map(o => o.text).join(',') === 'multi2-1,multi2-2'",
        arg=select.element_handle(),
        timeout=30_000,
    )
    for i in range(2):
        value = options.nth(i).get_attribute("value")
        assert re.fullmatch(r"[a-z0-9]{8}", value or ""), value
        assert options.nth(i).text_content() != value
        assert options.nth(i).get_attribute("title") == f"session {value}"
    assert select.get_attribute("title") == f"session {options.first.get_attribute('value')}"

    pre = viewer.get_by_label(re.compile("^Logs of multi2-1$"))
    pre.wait_for()
    # Follow: once the log overflows the box, each new poll's lines stay in sight.
    page.wait_for_function(
        f"pre => ({_TAIL_JS})(pre).overflows", arg=pre.element_handle(), timeout=60_000
    )
    seen = []
    for _ in range(3):
        state = tail_after_new_lines(page, pre)
        seen.append(state)
        assert state["atEnd"], f"{app}: follow left the last line out of sight: {state}"
    assert seen[-1]["last"] > seen[0]["last"]
    # The newest line is on screen, not only at the end of the scroll box.
    box = pre.bounding_box()
    assert box is not None and box["height"] > 50

    for tag in each_theme(page):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})
            viewer.scroll_into_view_if_needed()
            page.wait_for_function(f"pre => ({_TAIL_JS})(pre).atEnd", arg=pre.element_handle())
            # Fits: the toolbar wraps instead of pushing the box wider than the page.
            width_used = viewer.evaluate("el => el.getBoundingClientRect().right")
            assert width_used <= width, f"{app} {width}px {tag}: the viewer is {width_used}px wide"
            screenshot(viewer, f"log-viewer-follow-{app}-{width}-{tag}")

    # A person reading further up is left there: new lines do not pull the view down.
    pre.hover()
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"pre => !({_TAIL_JS})(pre).atEnd", arg=pre.element_handle())
    state = tail_after_new_lines(page, pre)  # given 10 s to be pulled down, if it were
    assert not state["atEnd"], f"{app}: new lines pulled a reader back to the end: {state}"
    # Back at the end, the view follows again.
    page.mouse.wheel(0, 1_000_000)
    page.wait_for_function(f"pre => ({_TAIL_JS})(pre).atEnd", arg=pre.element_handle())
    state = tail_after_new_lines(page, pre)
    assert state["atEnd"], f"{app}: follow did not resume at the end: {state}"


def test_log_viewer_in_jupyterlab(page, lab, notebook):
    open_and_run(page, lab, notebook(CELL))
    check_names_and_follow(page, "lab")


def test_log_viewer_in_notebook7(nb7_page, notebook7, notebook):
    nb7.open_and_run(nb7_page, notebook7, notebook(CELL, name="log-viewer-nb7.ipynb"))
    check_names_and_follow(nb7_page, "nb7")
