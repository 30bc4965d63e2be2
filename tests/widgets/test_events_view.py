"""EventsView: parsed tables per session, Refresh, warnings, missing sessions, fallback."""

from __future__ import annotations

import pytest
from widget_fakes import TOKEN, FakeSkaha, send, wait_until

from canfar_widgets.widgets.events_view import EventsView

TABLE = (
    "TYPE      REASON             MESSAGE                                            FIRST-TIME             LAST-TIME\n"
    "Normal    Scheduled          Successfully assigned skaha/pod-1 to node-3        <none>                 <none>\n"
    "Warning   FailedScheduling   0/3 nodes are available: insufficient memory.      2026-08-01T17:49:57Z   2026-08-01T17:52:01Z\n"
    "Normal    Pulled             Container image <b>x</b> already present           2026-08-01T17:49:57Z   2026-08-01T17:49:57Z\n"
)


@pytest.fixture
def sky():
    sky = FakeSkaha()
    sky.add("abc12345", status="Pending", events=TABLE)
    sky.add("def67890", status="Running", events="<none>\n")
    return sky


def test_events_are_parsed_into_rows(sky):
    view = EventsView(["abc12345", "def67890"], sky.session())
    view._initial.result(5)
    rows = view.events["abc12345"]
    assert [r["type"] for r in rows] == ["Normal", "Warning", "Normal"]
    assert rows[1] == {
        "type": "Warning", "reason": "FailedScheduling",
        "message": "0/3 nodes are available: insufficient memory.",
        "first_time": 1785606597.0, "last_time": 1785606721.0,
    }  # fmt: skip
    assert rows[0]["first_time"] is None
    assert view.events["def67890"] == []
    assert view.problems == {}
    assert view.warnings() == [
        ("abc12345", "FailedScheduling", "0/3 nodes are available: insufficient memory.")
    ]
    assert view.status.startswith("3 events, 1 warning")
    assert view.busy is False and view.error == ""
    assert repr(view) == "<EventsView: 2 sessions, 3 events, 1 warnings>"


def test_refresh_button_reads_again(sky):
    view = EventsView("abc12345", sky.session())
    view._initial.result(5)
    before = len(sky.made("GET", "session/abc12345"))
    sky.events["abc12345"] = TABLE.splitlines()[0] + "\n" + TABLE.splitlines()[2] + "\n"
    send(view, kind="refresh")
    assert wait_until(lambda: len(view.events["abc12345"]) == 1)
    assert len(sky.made("GET", "session/abc12345")) == before + 1
    assert sky.made("GET", "session/abc12345")[-1].url.params["view"] == "events"


def test_a_missing_session_does_not_hide_the_others(sky):
    view = EventsView(["gone0000", "abc12345"], sky.session())
    view._initial.result(5)
    assert len(view.events["abc12345"]) == 3
    assert "gone0000" in view.problems and "deleted" in view.problems["gone0000"]
    strict = EventsView(["gone0000", "abc12345"], sky.session(errors="raise"))
    strict._initial.result(5)
    assert strict.problems == {"gone0000": "Session not found: it may have been deleted."}
    assert len(strict.events["abc12345"]) == 3


def test_server_errors_are_reported_per_session_without_secrets(sky):
    sky.fail["session/abc12345?view=events"] = (500, f"oops {TOKEN}")
    view = EventsView(["abc12345", "def67890"], sky.session(errors="raise"))
    view._initial.result(30)
    assert view.problems["abc12345"].startswith("Could not read events:")
    assert TOKEN not in view.problems["abc12345"]
    assert view.events == {"def67890": []}


def test_static_fallback(sky):
    view = EventsView("abc12345", sky.session())
    view._initial.result(5)
    html = view._static_html()
    assert html.count("<table") == 1 and "Events of abc12345</caption>" in html
    assert ">First seen</th>" in html and 'scope="col"' in html
    assert "⚠ Warning" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_needs_an_id(sky):
    with pytest.raises(ValueError):
        EventsView("  ", sky.session())


def test_headings_show_names_not_ids(sky):
    """Issue 15, item 15: `multi2-1`, not `b24madfl` (the id on hover)."""
    sky.add("b24madfl", status="Running", name="multi2-1", events=TABLE)
    view = EventsView(["b24madfl", "abc12345"], sky.session())
    view._initial.result(5)
    assert view.names["b24madfl"] == "multi2-1"
    assert view.title_of("b24madfl") == "multi2-1"
    assert view.title_of("nosuchid") == "nosuchid"
    assert "Events of multi2-1 (id b24madfl)</caption>" in view._static_html()


def test_names_come_from_the_shared_list_without_extra_requests(sky):
    from canfar_widgets.widgets._source import SessionSource

    sky.add("b24madfl", status="Running", name="multi2-1", events=TABLE)
    session = sky.session()
    SessionSource.of(session).feed.refresh_now().result(5)
    before = len(sky.made("GET", "session/b24madfl"))
    view = EventsView("b24madfl", session)
    view._initial.result(5)
    assert view.names == {"b24madfl": "multi2-1"}
    # Only the events request: the name came from the list already polled.
    assert len(sky.made("GET", "session/b24madfl")) == before + 1
