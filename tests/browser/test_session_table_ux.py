"""The SessionTable as a person uses it, in JupyterLab 4 and Notebook 7 (Chromium, local platform).

Issue 15, items 7-11, 13 and 18 as they apply to the table: it fits the notebook at 900,
1280 and 1400 px in light and dark (Name, Status and Time left always visible, compact
actions, no scroll box of its own for a few rows, low-value columns dropped first); Logs
open outside the table with focus left on the button pressed; "Hide finished" is off and
an empty state says what is hidden; Renew is disabled with a reason where it means
nothing and shows the new expiry as a highlighted date; names sort naturally; one message
per event, cleared when no longer news; accessible names are unique in the widget.
Issue 16: a windowed table of many rows keeps row counts for screen readers and
selection over all rows while only the rows on screen are in the DOM.

Everything is found by role and accessible name. Screenshots: artifacts/screenshots/
session-table-<app>-<width>-<theme>.png (look at them).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from jlab import WIDTHS, each_theme, screenshot
from jlab import open_and_run as lab_open_and_run

pytestmark = pytest.mark.usefixtures("no_sessions_left")

SETUP = """
from canfar_widgets import Session, SessionTable
session = Session()
"""
TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
NOTEBOOK = "images.canfar.net/skaha/astroml-notebook:latest"


@pytest.fixture
def sessions(platform) -> dict[str, str]:
    """A notebook, three running jobs named job-1, job-2, job-10 and one finished job: {name: id}."""
    tag = secrets.token_hex(2)
    client = platform.session()
    made: dict[str, str] = {}
    try:
        # First the one that finishes (the platform's capacity may queue it behind the rest).
        done = client.create(f"done-{tag}", image=TERMINAL, cmd="echo", args="finished")[0]
        client.wait([done], until="finished", timeout=60)
        made[f"done-{tag}"] = done
        made[f"nb-{tag}"] = client.create(
            f"nb-{tag}", image=NOTEBOOK, kind="notebook", cores=1, ram=1
        )[0]
        for n in (10, 2, 1):
            made[f"ux{tag}-job-{n}"] = client.create(
                f"ux{tag}-job-{n}", image=TERMINAL, cmd="sleep", args="300", cores=1, ram=1
            )[0]
    finally:
        client.close()
    return made


def table(page: Any) -> Any:
    widget = page.locator(".cw-session-table")
    widget.scroll_into_view_if_needed()
    return widget


def row(page: Any, name: str) -> Any:
    return (
        table(page)
        .get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name=name, exact=True))
    )


def wait_rows(page: Any, names: list[str]) -> None:
    for name in names:
        row(page, name).wait_for()


def open_table(front_end: Any, notebook: Any, *cells: str) -> None:
    front_end.open_and_run(notebook(SETUP, *(cells or ("SessionTable(session)",))))


_FIT_JS = """el => {
  const box = el.querySelector('.cw-scroll');
  const widget = el.getBoundingClientRect();
  const visible = (sel) => [...el.querySelectorAll(sel)].filter(e => e.getClientRects().length > 0)
    .every(e => { const r = e.getBoundingClientRect(); return r.left >= widget.left - 1 && r.right <= widget.right + 1; });
  return {
    sideways: box.scrollWidth - box.clientWidth,
    ownScroll: box.scrollHeight - box.clientHeight,
    overflowY: getComputedStyle(box).overflowY,
    headersInView: visible('thead th.cw-col-name, thead th.cw-col-status, thead th.cw-col-expiry, thead th.cw-col-actions'),
    actionsInView: visible('tbody .cw-col-actions button, tbody .cw-col-actions a'),
    hidden: [...el.querySelectorAll('thead th')].filter(th => th.getClientRects().length === 0).map(th => th.textContent.trim()),
    widgetWidth: widget.width,
  };
}"""


def test_the_table_fits_at_every_width_and_theme(front_end, notebook, sessions):
    """Item 7: Name, Status, Time left and the actions in view at 900/1280/1400 px, light and dark."""
    kind, page = front_end.tag, front_end.page
    open_table(front_end, notebook)
    names = list(sessions)
    wait_rows(page, names)
    for shade in each_theme(page):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(300)  # layout after the resize
            widget = table(page)
            fit = widget.evaluate(_FIT_JS)
            screenshot(widget, f"session-table-{kind}-{width}-{shade}")
            assert fit["sideways"] <= 1, f"{kind} {width}px: the table scrolls sideways {fit}"
            assert fit["headersInView"] and fit["actionsInView"], f"{kind} {width}px: {fit}"
            # A few rows: no scroll box of its own inside the notebook's.
            assert fit["ownScroll"] <= 1 and fit["overflowY"] != "scroll", fit
            for header in ("Name", "Status", "Time left"):
                assert table(page).get_by_role("columnheader", name=re.compile(header)).is_visible()
            # Low-value columns drop first: if anything is hidden, ID and Image are.
            if fit["hidden"]:
                assert {"ID", "Image"} <= set(fit["hidden"]), fit
            # Compact actions: a row's six actions take far less than five text buttons did.
            actions = row(page, names[0]).locator(".cw-actions").bounding_box()
            assert actions is not None and actions["width"] < 200, actions
            more = row(page, names[0]).get_by_role("button", name=f"More actions for {names[0]}")
            if more.is_visible():  # a narrow table: the rest of the actions in one row menu
                more.click()
                menu = table(page).get_by_role("menu", name=f"Actions for {names[0]}")
                items = menu.get_by_role("menuitem").all_inner_texts()
                assert [i.split("\n")[0] for i in items] == [
                    f"Events of {names[0]}",
                    f"Renew {names[0]}",
                    f"Keep {names[0]} alive until…",
                    f"Delete {names[0]}",
                ], items
                screenshot(widget, f"session-table-{kind}-{width}-{shade}-menu")
                page.keyboard.press("Escape")
                menu.wait_for(state="hidden")
                assert more.evaluate("e => e === document.activeElement")  # back where it was


def test_names_sort_naturally_and_finished_jobs_show(front_end, notebook, sessions):
    """Items 9 and 11: job-1, job-2, job-10; "Hide finished" off; the empty state says why."""
    page = front_end.page
    open_table(front_end, notebook)
    jobs = [n for n in sessions if "-job-" in n]
    done = next(n for n in sessions if n.startswith("done-"))
    wait_rows(page, [*jobs, done])  # the finished job is shown: Hide finished is off
    widget = table(page)
    assert not widget.get_by_label("Hide finished", exact=True).is_checked()
    widget.get_by_role("button", name="Name", exact=True).click()
    heads = widget.locator("tbody .cw-col-name").all_inner_texts()
    order = [h for h in heads if h in jobs]
    assert order == sorted(jobs, key=lambda n: int(n.rsplit("-", 1)[1])), order

    # Only the finished job matches the search; hiding finished ones leaves an empty
    # table that says how many are hidden and why, with a way back.
    widget.get_by_label("Search sessions", exact=True).fill(done)
    row(page, done).wait_for()
    widget.get_by_label("Hide finished", exact=True).check()
    empty = widget.get_by_role("row").filter(has_text="hidden by “Hide finished”")
    empty.wait_for()
    assert "1 finished job is hidden" in empty.inner_text()
    empty.get_by_role("button", name="Show finished").click()
    row(page, done).wait_for()


def test_logs_open_outside_the_table_and_focus_stays(front_end, notebook, sessions):
    """Items 8 and 18: the detail opens under the table, not inside its scroll box; focus stays."""
    kind, page = front_end.tag, front_end.page
    open_table(front_end, notebook)
    job = next(n for n in sessions if n.endswith("-job-1"))
    wait_rows(page, [job])
    logs = row(page, job).get_by_role("button", name=f"Logs of {job}", exact=True)
    logs.click()
    panel = page.get_by_role("region", name=f"Logs: {job}")
    panel.wait_for()
    assert logs.get_attribute("aria-expanded") == "true"
    outside = panel.evaluate("p => !p.closest('.cw-scroll')")
    assert outside, "the log panel is inside the table's scroll box"
    focused = page.evaluate(
        "() => document.activeElement && document.activeElement.getAttribute('aria-label')"
    )
    assert focused == f"Logs of {job}", focused
    screenshot(table(page), f"session-table-{kind}-logs")
    panel.get_by_role("button", name=f"Close logs of {job}").click()
    panel.wait_for(state="hidden")
    assert (
        page.evaluate("() => document.activeElement.getAttribute('aria-label')") == f"Logs of {job}"
    )

    # Accessible names are unique within the widget (every visible button and link).
    names = table(page).evaluate("""el => [...el.querySelectorAll('button, a[href]')]
        .filter(e => e.getClientRects().length > 0)
        .map(e => (e.getAttribute('aria-label') || e.textContent).trim())""")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, duplicates


def test_renew_says_why_not_and_shows_the_new_expiry(front_end, notebook, sessions):
    """Item 10: Renew disabled with a reason for jobs; after a renew, the new expiry as a date."""
    kind, page = front_end.tag, front_end.page
    open_table(front_end, notebook)
    nb = next(n for n in sessions if n.startswith("nb-"))
    job = next(n for n in sessions if n.endswith("-job-2"))
    done = next(n for n in sessions if n.startswith("done-"))
    wait_rows(page, [nb, job, done])
    for name, why in (
        (job, "Headless jobs run until their command ends"),
        (done, "Finished sessions"),
    ):
        button = row(page, name).get_by_role("button", name=f"Renew {name}", exact=True)
        assert button.is_disabled()
        assert why in (button.get_attribute("aria-description") or "")
    row(page, nb).get_by_role("cell", name=re.compile("Running|Pending")).first.wait_for()
    row(page, nb).filter(has_text="Running").wait_for(timeout=30_000)
    row(page, nb).get_by_role("button", name=f"Renew {nb}", exact=True).click()
    left = row(page, nb).locator("td.cw-col-expiry")
    left.filter(has_text=re.compile(r"renewed to \w{3} \d+ \w{3} \d\d:\d\d")).wait_for()
    assert "cw-renewed" in (left.get_attribute("class") or "")
    # Item 18: focus stayed on the button pressed, through the row's "Renewing..." state.
    focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert focused == f"Renew {nb}", focused
    fit = table(page).evaluate(_FIT_JS)
    assert fit["sideways"] <= 1 and fit["actionsInView"], (
        f"the new date pushed the actions away: {fit}"
    )
    screenshot(table(page), f"session-table-{kind}-renewed")
    # Item 13: the outcome is said once and cleared when it is no longer news.
    status = table(page).locator(
        ".cw-status-line[role=status]"
    )  # not the notify note, also a status
    status.filter(has_text="Renewed 1 session.").wait_for()
    assert [t.strip() for t in table(page).locator("[role=alert]").all_inner_texts()] == [
        "",
        "",
    ]  # not said twice (alert, notice inbox)
    status.filter(has_text=re.compile("^$")).wait_for(timeout=20_000)

    # Issue 14: "Keep alive until..." from the row; the row then says until when.
    row(page, nb).get_by_role("button", name=f"Keep {nb} alive until…", exact=True).click()
    editor = table(page).get_by_role("group", name="Keep alive")
    when = editor.get_by_label(f"Keep {nb} alive until")
    assert when.evaluate("e => e === document.activeElement")
    editor.get_by_role("button", name="Keep alive", exact=True).click()
    left.filter(has_text=re.compile(r"kept alive until \w{3} \d+ \w{3} \d\d:\d\d")).wait_for()
    button = row(page, nb).get_by_role("button", name=re.compile(f"^Keep {nb} alive: until"))
    assert button.get_attribute("aria-pressed") == "true"
    screenshot(table(page), f"session-table-{kind}-kept-alive")
    button.click()
    editor.get_by_role("button", name="Stop keeping alive").click()
    left.filter(has_text="kept alive").wait_for(state="detached")


def test_many_rows_are_windowed_with_row_counts(page, lab, notebook, platform):
    """Issue 16: 600 sessions: a bounded DOM, aria-rowcount/rowindex, select all over all rows."""
    ids = platform.preload(600, kind="headless", status="Running", name="bulk")
    try:
        lab_open_and_run(page, lab, notebook(SETUP, "SessionTable(session)"))
        widget = table(page)
        widget.locator("tbody tr[data-id]").first.wait_for()
        grid = widget.get_by_role("table")
        page.wait_for_function(
            "t => t.getAttribute('aria-rowcount') === '601'", arg=grid.element_handle()
        )
        in_dom = widget.locator("tbody tr[data-id]").count()
        assert 10 <= in_dom <= 120, in_dom
        # Scroll the table's own box to the end: the last rows arrive, numbered for screen readers.
        widget.locator(".cw-scroll").evaluate("b => { b.scrollTop = b.scrollHeight; }")
        last = widget.locator("tbody tr[aria-rowindex='601']")
        last.wait_for()
        assert widget.locator("tbody tr[data-id]").count() <= 120
        widget.get_by_label("Select all shown sessions").check()
        widget.get_by_text("600 selected").wait_for()
        screenshot(widget, "session-table-lab-windowed")
    finally:
        client = platform.session()
        try:
            client.destroy(list(ids))
        finally:
            client.close()


_WINDOW_NAMES_JS = """el => [...el.querySelectorAll('tbody tr[data-id]')].map(
  tr => [Number(tr.getAttribute('aria-rowindex')), tr.querySelector('.cw-col-name').textContent])"""


# To the top, or to the end as a person gets there: again until the end stays put (a window
# of taller rows than the last one measured makes the box longer once it is placed).
_SCROLL_JS = """async (b, to) => {
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (let i = 0; i < 10; i += 1) {
    b.scrollTop = to === 'end' ? b.scrollHeight : 0;
    await frames();
    if (to !== 'end' || b.scrollTop + b.clientHeight >= b.scrollHeight - 1) return;
  }
}"""


_LAST_ROW_IN_VIEW_JS = """b => {
  const rows = b.querySelectorAll('tbody tr[data-id]');
  const last = rows[rows.length - 1];
  if (!last || last.getAttribute('aria-rowindex') !== b.querySelector('table').getAttribute('aria-rowcount')) return false;
  const r = last.getBoundingClientRect(), box = b.getBoundingClientRect();
  return r.bottom <= box.bottom + 1 && r.top >= box.top - 1;
}"""


def test_windowed_sort_and_filter_cover_every_row(page, lab, notebook, platform):
    """Issue 16: the first screen is sorted before the rest (the full sort follows when idle);
    whatever is on screen, at the top or the end, is in the order of all rows, and a filter
    counts all rows, for the caption and the screen reader's row count."""
    # The autouse fixture deletes them afterwards.
    platform.preload(400, kind="headless", status="Running", name="bulk")
    platform.preload(300, kind="notebook", status="Running", name="nbk")
    lab_open_and_run(page, lab, notebook(SETUP, "SessionTable(session)"))
    widget = table(page)
    grid = widget.get_by_role("table")
    box = widget.locator(".cw-scroll")
    page.wait_for_function(
        "t => t.getAttribute('aria-rowcount') === '701'", arg=grid.element_handle()
    )

    def window(expect_first: int | None = None) -> list[tuple[int, str]]:
        if expect_first is not None:
            widget.locator(f"tbody tr[aria-rowindex='{expect_first}']").wait_for()
        rows = [tuple(r) for r in box.evaluate(_WINDOW_NAMES_JS)]
        indexes = [i for i, _ in rows]
        assert indexes == list(range(indexes[0], indexes[0] + len(rows))), indexes
        return rows

    def natural(name: str) -> tuple[str, int]:
        stem, _, n = name.rpartition("-")
        return stem, int(n)

    def scroll(to: str) -> None:
        box.evaluate(_SCROLL_JS, to)

    # Newest first; sessions started in the same second go by name, naturally (bulk-2
    # before bulk-10). The expected order of all 700, from the platform's own records: the
    # two preloads may fall in different seconds on a loaded machine (CI saw it once).
    records = [r for r in platform.sessions() if r["name"].startswith(("bulk-", "nbk-"))]
    by_name = sorted(records, key=lambda r: natural(r["name"]))
    expected = [r["name"] for r in sorted(by_name, key=lambda r: r["startTime"], reverse=True)]
    assert len(expected) == 700

    def in_order(rows: list[tuple[int, str]]) -> bool:
        # Row index 2 is the first data row (row 1 is the header).
        return [n for _, n in rows] == expected[rows[0][0] - 2 : rows[-1][0] - 1]

    top = window(2)
    assert in_order(top), (top[:3], expected[:3])
    scroll("end")
    end = window(701)
    assert end[-1][0] == 701 and in_order(end), (end[-3:], expected[-3:])

    # Name, then Name again: descending over all 700 rows, seen at both ends.
    scroll("top")
    name_sort = widget.get_by_role("button", name="Name", exact=True)
    name_sort.click()
    page.wait_for_function(
        "t => t.querySelector('th[aria-sort]')?.getAttribute('aria-sort') === 'ascending'",
        arg=grid.element_handle(),
    )
    name_sort.click()
    page.wait_for_function(
        "t => t.querySelector('tbody tr[aria-rowindex=\"2\"] .cw-col-name')?.textContent === 'nbk-300'",
        arg=grid.element_handle(),
    )
    top = window(2)
    assert [n for _, n in top[:2]] == ["nbk-300", "nbk-299"], top[:2]
    scroll("end")
    end = window(701)
    assert [n for _, n in end[-2:]] == ["bulk-2", "bulk-1"], end[-2:]

    # A filter that still leaves a windowed table: counted over all rows, in order at both ends.
    scroll("top")
    widget.get_by_label("Filter sessions by kind").select_option("notebook")
    page.wait_for_function(
        "t => t.getAttribute('aria-rowcount') === '301'", arg=grid.element_handle()
    )
    widget.get_by_text("CANFAR sessions: 300 shown of 700").wait_for(state="attached")
    top = window(2)
    assert top[0] == (2, "nbk-300") and all(n.startswith("nbk-") for _, n in top), top[:3]
    # One scroll to the end, as a person drags the bar down: the last row comes into view,
    # though the spacers were sized with the rows of before the filter.
    box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
    page.wait_for_function(_LAST_ROW_IN_VIEW_JS, arg=box.element_handle(), timeout=5000)
    end = window(301)
    assert end[-1] == (301, "nbk-1"), end[-3:]
    assert widget.locator("tbody tr[data-id]").count() <= 120
