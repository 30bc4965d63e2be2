"""A saved notebook tells the truth: its widget outputs show the last state (issue 15, item 19).

Each widget is displayed as its live view plus a static HTML snapshot that follows the
widget's state. These tests run a batch to completion in JupyterLab 4 and in Notebook 7,
check the snapshot is hidden while the live view shows, save the notebook, shut the kernel
down, reload the page and see the last state ("2 of 2 finished") where "model not found"
used to be; the saved file and its nbconvert HTML export carry that state too.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest
from jlab import open_and_run as open_and_run_lab
from jlab import screenshot, shutdown_kernels
from nb7 import open_and_run as open_and_run_nb7

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"


def cells(name: str) -> tuple[str, str]:
    return (
        f"""
from canfar_widgets import Session, watch
session = Session()
ids = (session.create(name="{name}-a", image="{TERMINAL}", cmd="sleep", args="1")
       + session.create(name="{name}-b", image="{TERMINAL}", cmd="sleep", args="2"))
batch = watch(ids, session=session)
batch
""",
        """
records = batch.wait(timeout=60)
import time
time.sleep(3)  # the snapshot refreshes at most every 2 s after a change
print("done", sorted(r.state for r in records))
""",
    )


def _saved_snapshots(path) -> list[str]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # caught while the server writes it: read again
        return []
    return [
        "".join(out["data"]["text/html"])
        if isinstance(out["data"]["text/html"], list)
        else out["data"]["text/html"]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
        and "data-canfar-snapshot" in "".join(out["data"]["text/html"])
    ]


def _save(page) -> None:
    page.locator(".jp-NotebookPanel .jp-Cell .jp-InputPrompt").first.click()
    page.keyboard.press("Control+s")


def _check_saved_and_reopened(page, server, lab_root, name: str, label: str) -> None:
    snapshot = page.locator("[data-canfar-snapshot]")
    # Live: the view shows, its snapshot output is there but hidden.
    live = page.locator(".canfar-w:not(.canfar-w-static)").first
    live.wait_for()
    assert live.is_visible()
    assert snapshot.count() == 1
    assert not snapshot.is_visible()
    assert "model not found" not in page.locator(".jp-NotebookPanel").inner_text()

    _save(page)
    path = lab_root / name
    page.wait_for_function("() => !document.title.startsWith('*')", timeout=10_000)
    saved = _saved_snapshots(path)
    for _ in range(50):
        if saved and "2 of 2 finished" in saved[0]:
            break
        page.wait_for_timeout(200)
        saved = _saved_snapshots(path)
    assert len(saved) == 1 and "2 of 2 finished" in saved[0], saved
    assert not snapshot.is_visible()  # still only the live view on the page
    screenshot(page.locator(".jp-Cell").first, f"saved-snapshot-live-{label}")

    # No kernel, no model: the page shows the saved snapshot, not an error.
    shutdown_kernels(server)
    page.reload()
    page.locator(".jp-NotebookPanel").first.wait_for()
    reopened = page.locator("[data-canfar-snapshot]")
    reopened.wait_for(state="visible")
    assert "2 of 2 finished" in reopened.inner_text()
    page.wait_for_timeout(3_000)  # the widget manager gives up on the model after ~2 s
    text = page.locator(".jp-NotebookPanel").inner_text()
    assert "model not found" not in text, page.locator(".jp-OutputArea").first.evaluate(
        "e => e.outerHTML"
    )[:2000]
    assert reopened.is_visible()
    screenshot(page.locator(".jp-Cell").first, f"saved-snapshot-{label}")

    # nbconvert's HTML export shows the same last state.
    html = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "--stdout", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "2 of 2 finished" in html and "0 of 2 finished" not in html


def test_saved_notebook_shows_the_last_state_in_jupyterlab(page, lab, lab_root, notebook):
    name = notebook(*cells(f"snap-{secrets.token_hex(2)}"))
    open_and_run_lab(page, lab, name)
    _check_saved_and_reopened(page, lab, lab_root, name, "lab")


def test_saved_notebook_shows_the_last_state_in_notebook_7(nb7_page, notebook7, lab_root, notebook):
    name = notebook(*cells(f"snap7-{secrets.token_hex(2)}"))
    open_and_run_nb7(nb7_page, notebook7, name)
    _check_saved_and_reopened(nb7_page, notebook7, lab_root, name, "nb7")
