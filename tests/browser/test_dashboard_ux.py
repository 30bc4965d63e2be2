"""The Dashboard as a person uses it (issue 15, items 12, 14, 15, 18), in JupyterLab 4 and Notebook 7.

Each test runs in both hosts, at 900, 1280 and 1400 px, light and dark; controls are found
by role and accessible name. What each checks, and why it failed before:

- item 18: the Dashboard's parts are named regions ("Launch a session", "Platform load",
  "Sessions"), so the form's Kind and the table's, and the two Refresh buttons, are told
  apart (before: no regions, two anonymous "Refresh" buttons); and page-wide, the table's
  filters are "Filter sessions by kind"/"... by status"/"Search sessions" (before: a second
  "Kind" beside the form's);
- item 19: the Dashboard has a saved snapshot output, hidden while the view is live;
- item 14: the platform numbers read one way ("CPU: 5 of 2 cores requested: over-committed
  by 3 cores", RAM in GiB, "Largest session: 8 cores, 32 GiB ... such a session would
  wait") (before: "CPU requested 5 of 2 cores (250%)" beside "Largest session ... 34 GB");
- item 15: EventsView tables are headed by the session's name, its id on hover (before: the id);
- item 12: a refused token gives one banner for the whole Dashboard, with what to do
  (before: one red 401 per part).

Screenshots: artifacts/screenshots/dash-<host>-<width>-<theme>.png.
"""

from __future__ import annotations

import re
import secrets

import pytest
from jlab import SCREENSHOTS, WIDTHS, each_theme, screenshot

pytestmark = pytest.mark.usefixtures("no_sessions_left")

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
LOGIN = "CANFAR did not accept your login (expired token?)"


# The names of the visible controls of one role: aria-label, else the label, else the text.
_NAMES_JS = (
    "els => els.filter(e => e.offsetParent !== null)"
    ".map(e => e.getAttribute('aria-label') || e.labels?.[0]?.textContent"
    " || e.textContent || '').map(t => t.trim())"
)


def names_said_twice(within, role: str) -> set[str]:
    """The accessible names that two visible controls of ``role`` inside ``within`` share."""
    names = within.get_by_role(role).evaluate_all(_NAMES_JS)
    return {n for n in names if n and names.count(n) > 1}


# How many lines a text takes: the distinct tops of its line boxes.
_LINES_JS = """e => { const r = document.createRange(); r.selectNodeContents(e);
  return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"""


def test_regions_numbers_and_names(front_end, notebook):
    tag, page, run = front_end.tag, front_end.page, front_end.open_and_run
    name = f"events-{secrets.token_hex(3)}"
    page.set_viewport_size({"width": 1280, "height": 1600})
    run(
        notebook(
            "from canfar_widgets import Dashboard, EventsView, Session\n"
            "session = Session()\n"
            f"ids = session.create({name!r}, image={TERMINAL!r}, cmd='sleep', args='60')\n",
            "dash = Dashboard(session)\ndash",
            "EventsView(ids, session)",
        )
    )
    regions = {
        n: page.get_by_role("region", name=n, exact=True)
        for n in ("Launch a session", "Platform load", "Sessions")
    }
    for region in regions.values():
        region.wait_for()
    # Each part's name is on screen above it too, not only said to a screen reader (the
    # table's filters read as part of the load above them otherwise).
    for region_name, region in regions.items():
        region.get_by_text(region_name, exact=True).first.wait_for(state="visible")
    load = regions["Platform load"]
    cpu = load.get_by_text(re.compile(r"^CPU: [\d.]+ of [\d.]+ cores? requested"))
    cpu.wait_for()
    # Item 19: the Dashboard has its saved snapshot as the other widgets do, hidden while live.
    dash_snapshot = (
        page.locator(".cw-dashboard")
        .locator("xpath=ancestor::*[contains(@class,'jp-Cell')]")
        .locator("[data-canfar-snapshot]")
    )
    assert dash_snapshot.count() == 1
    assert not dash_snapshot.is_visible()

    failures = []
    for shade in each_theme(page):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1600})
            regions["Sessions"].scroll_into_view_if_needed()
            path = SCREENSHOTS / f"dash-{tag}-{width}-{shade}.png"
            page.screenshot(path=str(path), animations="disabled")
            screenshot(load, f"dash-load-{tag}-{width}-{shade}")
            screenshot(page.locator(".cw-dashboard").first, f"dash-board-{tag}-{width}-{shade}")
            # Item 18: inside each region, every control's name is its own.
            for region_name, region in regions.items():
                for role in ("button", "combobox", "textbox", "searchbox"):
                    if dupes := names_said_twice(region, role):
                        failures.append(
                            f"{tag} {width} {shade}: {region_name} has two {role}s named {dupes}"
                        )
            # Item 18, page-wide: across the whole Dashboard too (the form's "Kind" is not
            # the table's "Filter sessions by kind").
            for role in ("button", "combobox", "textbox", "searchbox", "checkbox"):
                if dupes := names_said_twice(page.locator(".cw-dashboard").first, role):
                    failures.append(
                        f"{tag} {width} {shade}: the Dashboard has two {role}s named {dupes}"
                    )
            # The load's figures read on one line each at every width (in Notebook 7 at
            # 1400 px, beside the form, "CPU: ... (50%)" once broke over two).
            for figure in (cpu, load.get_by_text(re.compile(r"^RAM: "))):
                lines = figure.evaluate(_LINES_JS)
                if lines > 1:
                    failures.append(f"{tag} {width} {shade}: '{figure.text_content()}' wraps")
            sessions = regions["Sessions"]
            for role, label in (
                ("combobox", "Filter sessions by kind"),
                ("combobox", "Filter sessions by status"),
                ("searchbox", "Search sessions"),
                ("button", "Refresh sessions"),
            ):
                if sessions.get_by_role(role, name=label, exact=True).count() != 1:
                    failures.append(f"{tag} {width}: no {role} {label!r} in Sessions")
            # The load's Refresh says what it refreshes.
            if load.get_by_role("button", name="Refresh platform load").count() != 1:
                failures.append(f"{tag} {width}: no 'Refresh platform load' button")
    assert not failures, "\n".join(failures)

    # Item 14: one set of numbers, RAM in GiB, over-commitment in words (never > 100%).
    cpu_text = cpu.text_content()
    ram_text = load.get_by_text(re.compile(r"^RAM: ")).text_content()
    for text in (cpu_text, ram_text):
        percent = re.search(r"\((\d+)%\)", text)
        assert percent is None or int(percent.group(1)) <= 100, text
        assert ("over-committed" in text) == (percent is None and "not loaded" not in text), text
    assert "GiB" in ram_text and " GB" not in load.text_content()
    ceiling = load.get_by_text(re.compile(r"^Largest session: "))
    assert re.match(r"^Largest session: [\d.]+ cores?, [\d.]+ GiB", ceiling.text_content())

    # Issue 16, PlatformLoad update: samples arrive one by one and the sparkline grows.
    spark = load.locator("svg.cw-load-spark").first

    def samples() -> int:
        return int(
            re.search(
                r"\((\d+) samples\)", spark.get_attribute("aria-label") or "(0 samples)"
            ).group(1)
        )

    before = samples()
    for step in (1, 2):
        load.get_by_role("button", name="Refresh platform load").click()
        page.wait_for_function(
            "([el, n]) => (el.getAttribute('aria-label') || '').includes(`(${n} samples)`)",
            arg=[spark.element_handle(), before + step],
        )
    assert spark.evaluate("el => getComputedStyle(el).visibility") == "visible"

    # Item 15: the events table is headed by the session's name; the id is on hover.
    caption = page.locator(".cw-events caption").filter(has_text=name)
    caption.wait_for()
    title = caption.locator("[title^='id ']")
    assert title.text_content().startswith(name) and title.get_attribute("title") != f"id {name}"
    assert re.fullmatch(r"Events of " + re.escape(name) + r" \(id \w+\).*", caption.text_content())


def test_a_refused_login_shows_one_banner(front_end, notebook, platform):
    tag, page, run = front_end.tag, front_end.page, front_end.open_and_run
    page.set_viewport_size({"width": 1280, "height": 1600})
    run(
        notebook(
            "from canfar_widgets import Dashboard, Session\n"
            f"dash = Dashboard(Session(url={platform.url!r}, token='expired-{secrets.token_hex(4)}'))\n"
            "dash",
        )
    )
    banner = page.get_by_role("alert").filter(has_text=LOGIN)
    banner.wait_for()
    # Wait until every part has met the 401 (the load says "not loaded", the form loaded).
    page.get_by_role("region", name="Platform load").get_by_text("CPU: not loaded").wait_for()
    page.wait_for_timeout(1500)  # let the other parts' failures arrive, then count
    assert banner.count() == 1
    assert "canfar auth login" in banner.text_content()
    # In the widgets (and, below, not on stderr either).
    visible_401 = (
        page.locator(".cw-dashboard")
        .get_by_text(re.compile(r"HTTP 401"))
        .evaluate_all(
            "els => els.filter(e => e.offsetParent !== null && !e.closest('.cw-dash-banner'))"
            ".map(e => e.textContent)"
        )
    )
    assert visible_401 == [], visible_401
    assert page.get_by_role("button", name="Refresh after login").count() == 1
    # Nothing says it is loading for ever: what could not be read says "not loaded".
    sessions = page.get_by_role("region", name="Sessions")
    sessions.get_by_text("Not loaded.").wait_for()
    launch = page.get_by_role("region", name="Launch a session")
    launch.get_by_text("Images not loaded; type any image reference.").wait_for()
    loading = page.locator(".cw-dashboard").get_by_text(re.compile(r"Loading (sessions|images)"))
    assert loading.evaluate_all("els => els.filter(e => e.offsetParent !== null).length") == 0
    # Item 16: the widgets' failures are not repeated as red stderr lines under the cell.
    assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    for shade in each_theme(page):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1600})
            screenshot(page.locator(".cw-dashboard").first, f"dash-login-{tag}-{width}-{shade}")
