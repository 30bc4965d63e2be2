"""Every widget in JupyterLab Light and Dark: screenshots, and text that stays legible.

The screenshots land in artifacts/screenshots/<widget>-<theme>.png (the docs pick theirs
from there with tests/browser/docs_images.py). Legibility is measured, not eyeballed: the
WCAG contrast of text against its effective background must be at least 4.5.
"""

from __future__ import annotations

import pytest
from jlab import each_theme, low_contrast, open_and_run, screenshot, toggle_left_sidebar

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"

SETUP = f"""
import sys
from canfar_widgets import Dashboard, EventsView, LogViewer, Session, watch
session = Session()
notebook_ids = session.create("analysis", image="images.canfar.net/skaha/astroml-notebook:latest",
                              kind="notebook")
done = session.create("reduce-night-1", image={TERMINAL!r}, cmd="echo",
                      args="reduced 42 frames in 3.1 s")
running = session.create("long-fit", image={TERMINAL!r}, cmd="sleep", args="600")
batch = session.create("batch", image={TERMINAL!r}, cmd="sleep", args="2", replicas=3)
_ = session.wait(notebook_ids + running, until="Running", timeout=60)
_ = session.wait(done, until="finished", timeout=60)
"""

# Cells after SETUP, one widget each, in the order of WIDGETS below.
CELLS = [
    "dashboard = Dashboard(session)\ndashboard.table.hide_finished = False\ndashboard",
    "LogViewer(done, session)",
    "EventsView(notebook_ids, session)",
    "watch(batch, session=session)",
]

# name -> locator of the widget's root inside the page
WIDGETS = {
    "dashboard": ".widget-vbox:has(.cw-launch)",
    "launch-form": ".cw-launch",
    "platform-load": ".cw-load",
    "session-table": ".cw-session-table",
    "log-viewer": ".cw-logs",
    "events-view": ".cw-events",
    "watch": ".cw-batch",
}

# Text that must stay legible: (description, selector of the first such element).
TEXTS = [
    ("table name cell", ".cw-session-table td.cw-col-name"),
    ("table header", ".cw-session-table thead th button"),
    ("status Running", ".cw-session-table .cw-state-Running"),
    ("status Completed", ".cw-session-table .cw-state-Completed"),
    ("state Failed", ".cw-batch .cw-state-Failed"),
    ("state Pending", ".cw-batch .cw-state-Pending"),
    ("table 'Updated' time", ".cw-session-table .cw-updated"),
    ("form label", ".cw-launch label"),
    ("form hint", ".cw-launch .cw-lf-hint"),
    ("load text", ".cw-load .cw-muted"),
    ("log text", ".cw-logs pre"),
    ("events cell", ".cw-events td"),
]


def test_widgets_in_light_and_dark(page, lab, notebook, platform):
    page.set_viewport_size({"width": 1400, "height": 2200})
    nb = notebook(SETUP, *CELLS)
    open_and_run(page, lab, nb)
    toggle_left_sidebar(page)
    # Everything has data before the pictures are taken.
    page.get_by_role("row").filter(has_text="reduce-night-1").filter(
        has_text="Completed"
    ).wait_for()
    page.get_by_role("row").filter(has_text="analysis").filter(has_text="Running").wait_for()
    page.locator(".cw-logs").get_by_text("reduced 42 frames").wait_for()

    failures = []
    for tag in each_theme(page):
        for name, selector in WIDGETS.items():
            screenshot(page.locator(selector).first, f"{name}-{tag}")
        failures += low_contrast(page, TEXTS, tag)
    if failures:
        pytest.fail("text below WCAG AA contrast:\n" + "\n".join(failures))
