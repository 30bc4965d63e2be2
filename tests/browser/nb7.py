"""Helpers for the Notebook 7 browser tests: open a notebook there and run it.

Notebook 7 shows one document per browser tab at ``notebooks/<path>`` and has no status
bar, so "the kernel is idle" is read from the server's sessions API instead of the page.
Running the cells, waiting for them and theme switching are the same menus and prompts as
in JupyterLab (both are built from the same JupyterLab components), so those come from
:mod:`jlab`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from jlab import run_all_cells, wait_for_all_cells

from canfar_widgets.demo import JupyterNotebook


def open_and_run(page: Any, server: JupyterNotebook, name: str, *, wait: bool = True) -> None:
    """Open notebook ``name`` in Notebook 7, wait for an idle kernel, run all its cells.

    With ``wait``, returns once every cell has run; fails with the traceback if one raised.
    """
    page.goto(server.url(server.document_path(name)))
    page.locator(".jp-NotebookPanel").first.wait_for()
    wait_kernel_idle(server, name)
    run_all_cells(page, name)
    if wait:
        wait_for_all_cells(page, name)


def wait_kernel_idle(server: JupyterNotebook, name: str, timeout: float = 60.0) -> None:
    """Wait until the server has a session for notebook ``name`` whose kernel is idle."""
    request = urllib.request.Request(
        server.url("api/sessions", with_token=False),
        headers={"Authorization": f"token {server.token}"},
    )
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=10) as reply:
            sessions = json.load(reply)
        states = [s["kernel"]["execution_state"] for s in sessions if s.get("path") == name]
        if "idle" in states:
            return
        time.sleep(0.3)
    raise AssertionError(f"no idle kernel for {name} after {timeout:.0f}s (states: {states})")
