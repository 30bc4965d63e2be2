"""A click the kernel cannot take yet says "Waiting for the kernel", then clears (issue 14).

With JupyterLab's comms-over-subshells turned off (what ipykernel 6, VS Code and that
setting disabled give), a widget message waits in the kernel's queue while a cell blocks in
something that does not serve widget messages (here ``time.sleep``). A BatchWatch's
Refresh and a LaunchForm's Launch must then say so beside the button within about a
second, and the note must go once the kernel has taken the click.
"""

from __future__ import annotations

import secrets

import pytest
from jlab import open_and_run, screenshot, wait_for_prompt
from notebook_pages import comms_over_subshells_disabled

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
WAITING = "Waiting for the kernel (a cell is busy)..."


@pytest.fixture
def no_comm_subshells(lab):
    with comms_over_subshells_disabled(lab):
        yield


def click_while_cell_2_blocks(page, button, note):
    """Click ``button`` once cell 2 (``time.sleep``) is queued or running; ``note`` must say so.

    Returns the note, shown within about a second of the click.
    """
    button.wait_for()
    wait_for_prompt(page, 1, "[*]:")  # cell 2's prompt shows [*]
    button.click()
    note.wait_for(state="visible", timeout=5_000)
    assert note.inner_text() == WAITING
    return note


def test_a_click_waiting_in_a_busy_kernel_says_so(page, lab, notebook, no_comm_subshells):
    name = f"wait-{secrets.token_hex(2)}"
    nb = notebook(
        f"""
from canfar_widgets import Session, watch
session = Session()
batch = watch(session.create(name="{name}", image="{TERMINAL}", cmd="sleep", args="60"), session=session)
batch
""",
        "import time\ntime.sleep(10)  # a blocking call that serves no widget messages",
    )
    open_and_run(page, lab, nb, wait=False)
    refresh = page.locator(".cw-batch").get_by_role("button", name="Refresh", exact=True)
    note = click_while_cell_2_blocks(page, refresh, page.locator(".cw-kernel-wait"))
    screenshot(page.locator(".jp-Cell").first, "kernel-wait-note")
    # Once the cell ends the kernel takes the click, and the note goes.
    note.wait_for(state="hidden", timeout=30_000)
    assert refresh.get_attribute("aria-busy") == "false"


def test_a_launch_waiting_in_a_busy_kernel_says_so(page, lab, notebook, no_comm_subshells):
    name = f"wait-{secrets.token_hex(2)}"
    nb = notebook(
        f"""
from canfar_widgets import LaunchForm, Session
session = Session()
LaunchForm(session, name="{name}", kind="headless", image="{TERMINAL}", cmd="sleep", args="60")
""",
        "import time\ntime.sleep(10)  # a blocking call that serves no widget messages",
    )
    open_and_run(page, lab, nb, wait=False)
    form = page.get_by_role("form", name="Launch a CANFAR session")
    launch = form.get_by_role("button", name="Launch", exact=True)
    note = click_while_cell_2_blocks(page, launch, form.locator(".cw-kernel-wait"))
    # Once the cell ends the kernel takes the launch, and the note goes.
    note.wait_for(state="hidden", timeout=30_000)
    assert launch.get_attribute("aria-busy") == "false"
