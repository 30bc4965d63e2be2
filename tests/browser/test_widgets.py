"""What a person does with the widgets in JupyterLab, in Chromium, against the local platform.

Everything is found by accessible role and label, the names the widgets promise:
LaunchForm fields "Name", "Kind", "Image", "Command", "Arguments" and button "Launch";
SessionTable rows (<tr>) with "Connect" (a link when Running), "Logs", "Delete", "Confirm".
"""

from __future__ import annotations

import re
import secrets

import pytest
from jlab import open_and_run

pytestmark = pytest.mark.usefixtures("no_sessions_left")

SETUP = """
from canfar_widgets import Dashboard, Session, SessionTable
session = Session()
"""
TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def session_row(page, name):
    """The table row (<tr>) of the session called ``name``.

    The table is scrolled into view first: JupyterLab skips rendering cells out of view
    (``content-visibility``), and Playwright does not count unrendered rows as visible.
    """
    page.locator(".cw-session-table").scroll_into_view_if_needed()
    return page.get_by_role("row").filter(has_text=name)


def show_finished(page):
    """Untick the table's "Hide finished" filter (finished headless jobs are hidden by default)."""
    page.get_by_label("Hide finished", exact=True).uncheck()


def finished_job_row(page, lab, notebook, prefix, args):
    """A headless job (``echo <args>``) run to the end, then shown in a SessionTable: its row."""
    name = unique(prefix)
    nb = notebook(
        SETUP,
        f"ids = session.create({name!r}, image={TERMINAL!r}, cmd='echo', args={args!r})\n"
        "session.wait(ids, until='finished', timeout=60)",
        "SessionTable(session)",
    )
    open_and_run(page, lab, nb)
    show_finished(page)
    row = session_row(page, name)
    row.filter(has_text="Completed").wait_for()
    return row


def test_launch_a_headless_job_from_the_form(page, lab, notebook):
    name = unique("bt-launch")
    # The Dashboard: a LaunchForm and a SessionTable on one session, where a launch
    # shows in the table at once (separately, the table sees it at its next poll).
    nb = notebook(SETUP, "Dashboard(session)")
    open_and_run(page, lab, nb)
    show_finished(page)

    form = page.get_by_role("form", name="Launch a CANFAR session")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Kind", exact=True).select_option("headless")
    form.get_by_label("Image", exact=True).fill(TERMINAL)
    form.get_by_label("Command", exact=True).fill("echo")
    form.get_by_label("Arguments", exact=True).fill("hello from the browser")
    form.get_by_role("button", name="Launch").click()

    row = session_row(page, name)
    row.filter(has_text="Completed").wait_for(timeout=45_000)
    assert row.count() == 1


def test_logs_open_inline(page, lab, notebook):
    row = finished_job_row(page, lab, notebook, "bt-logs", "logs reach the page")
    row.get_by_role("button", name=re.compile("^Logs")).click()  # "Logs of <name>"
    # The log viewer opens under the row (not to be confused with the cell's source text).
    page.get_by_label(re.compile("^Logs of ")).filter(has_text="logs reach the page").wait_for()


def test_connect_is_a_link_to_the_running_session(page, lab, notebook, platform):
    name = unique("bt-nb")
    nb = notebook(
        SETUP,
        f"ids = session.create({name!r}, image='images.canfar.net/skaha/astroml-notebook:latest',"
        " kind='notebook')\nsession.wait(ids, until='Running', timeout=60)",
        "SessionTable(session)",
    )
    open_and_run(page, lab, nb)

    row = session_row(page, name)
    row.filter(has_text="Running").wait_for()
    link = row.get_by_role("link", name="Connect")
    [record] = [s for s in platform.sessions() if s.get("name") == name]
    assert record["connectURL"].startswith(platform.base)
    assert link.get_attribute("href") == record["connectURL"]
    assert link.get_attribute("target") == "_blank"


def test_delete_asks_for_confirmation(page, lab, notebook):
    row = finished_job_row(page, lab, notebook, "bt-del", "bye")
    row.get_by_role("button", name="Delete").click()
    # Nothing is deleted until the person confirms.
    confirm = row.get_by_role("button", name="Confirm")
    confirm.wait_for()
    confirm.click()
    row.wait_for(state="detached", timeout=30_000)
