"""LogViewer: first fetch, follow with append-only messages, stop when finished, replace on
a restarted log, the cap, errors, several sessions, the static fallback."""

from __future__ import annotations

import threading

import pytest
from widget_fakes import FakeSkaha, send, wait_until

from canfar_widgets.widgets.logs import LogViewer, strip_ansi


class Recorder:
    """Stands in for Widget.send: keeps the custom messages a view would receive."""

    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, content, buffers=None):
        with self.lock:
            self.messages.append(content)

    def appends(self, sid=None):
        return [m for m in self.messages if m.get("kind") == "append" and (sid is None or m["id"] == sid)]


@pytest.fixture
def sky(monkeypatch):
    monkeypatch.setattr(LogViewer, "poll_fast", 0.05)  # poll quickly in tests
    monkeypatch.setattr(LogViewer, "poll_slow", 0.05)
    return FakeSkaha()


def make_viewer(sky, ids, **kwargs):
    viewer = LogViewer(ids, sky.session(), **kwargs)
    recorder = Recorder()
    viewer.send = recorder
    viewer._initial.result(5)
    return viewer, recorder


def logs_requests(sky, sid):
    return [r for r in sky.made("GET", f"session/{sid}") if r.url.params.get("view") == "logs"]


def test_first_fetch_fills_the_trait_then_follow_appends_only_new_text(sky):
    sky.add("abc12345", status="Running", log="one\n")
    viewer, rec = make_viewer(sky, "abc12345")
    assert viewer.ids == ["abc12345"] and viewer.selected == "abc12345"
    assert viewer.texts == {"abc12345": "one\n"}
    assert viewer.states == {"abc12345": "Running"}
    assert wait_until(lambda: viewer.following)
    start = viewer.ends["abc12345"]
    assert rec.appends() == []  # the first text goes through the trait, not a message

    sky.logs["abc12345"] += "two\n"
    send(viewer, kind="visibility", visible=True, view="v1")  # a view on screen: polling runs
    assert wait_until(lambda: rec.appends())
    first = rec.appends()[0]
    assert first == {"kind": "append", "id": "abc12345", "text": "two\n", "start": start}
    sky.logs["abc12345"] += "three\n"
    assert wait_until(lambda: len(rec.appends()) == 2)
    assert rec.appends()[1]["text"] == "three\n"
    assert rec.appends()[1]["start"] == start + len("two\n")
    assert viewer.text() == "one\ntwo\nthree\n"
    # The trait catches up within flush_interval, and a resync request flushes at once.
    send(viewer, kind="resync")
    assert wait_until(lambda: viewer.texts["abc12345"] == "one\ntwo\nthree\n")
    assert viewer.ends["abc12345"] == start + len("two\nthree\n")
    viewer.close()


def test_polling_pauses_without_a_visible_view(sky):
    sky.add("abc12345", status="Running", log="x\n")
    viewer, _ = make_viewer(sky, "abc12345")
    assert wait_until(lambda: viewer.following)
    n = len(logs_requests(sky, "abc12345"))
    threading.Event().wait(0.3)
    assert len(logs_requests(sky, "abc12345")) == n  # nobody looking: no polls
    send(viewer, kind="visibility", visible=True, view="v1")
    assert wait_until(lambda: len(logs_requests(sky, "abc12345")) > n + 1)
    send(viewer, kind="visibility", visible=False, view="v1")
    threading.Event().wait(0.15)
    m = len(logs_requests(sky, "abc12345"))
    threading.Event().wait(0.3)
    assert len(logs_requests(sky, "abc12345")) <= m + 1
    viewer.close()


def test_follow_stops_after_a_last_fetch_once_finished(sky):
    sky.add("abc12345", status="Running", log="working\n")
    viewer, _ = make_viewer(sky, "abc12345")
    send(viewer, kind="visibility", visible=True, view="v")
    assert wait_until(lambda: viewer.following)
    sky.sessions["abc12345"]["status"] = "Completed"
    sky.logs["abc12345"] += "done\n"
    assert wait_until(lambda: not viewer.following)
    assert viewer.texts["abc12345"] == "working\ndone\n"
    assert viewer.states == {"abc12345": "Completed"}
    assert "final logs" in viewer.status
    n = len(sky.requests)
    threading.Event().wait(0.3)
    assert len(sky.requests) == n  # stopped
    # Turning follow off and on fetches once more and stops again.
    viewer.follow = False
    viewer.follow = True
    assert wait_until(lambda: len(sky.requests) > n)
    assert wait_until(lambda: not viewer.following)
    viewer.close()


def test_already_finished_session_is_fetched_once(sky):
    sky.add("abc12345", status="Failed", log="\x1b[31mboom\x1b[0m\n")
    viewer, _ = make_viewer(sky, "abc12345")
    assert wait_until(lambda: not viewer.following and viewer._sub is None)
    assert viewer.texts["abc12345"] == "\x1b[31mboom\x1b[0m\n"
    assert len(logs_requests(sky, "abc12345")) == 1


def test_a_restarted_log_replaces_the_text(sky):
    sky.add("abc12345", status="Running", log="first run\n")
    viewer, rec = make_viewer(sky, "abc12345", follow=False)
    end = viewer.ends["abc12345"]
    sky.logs["abc12345"] = "second\n"
    viewer.refresh().result(5)
    assert viewer.texts["abc12345"] == "second\n"
    assert viewer.ends["abc12345"] > end  # views see a new end and re-render
    assert rec.appends() == []


def test_follow_false_polls_only_on_request(sky):
    sky.add("abc12345", status="Running", log="a\n")
    viewer, rec = make_viewer(sky, "abc12345", follow=False)
    send(viewer, kind="visibility", visible=True, view="v")
    assert viewer.following is False and viewer._sub is None
    n = len(sky.requests)
    threading.Event().wait(0.25)
    assert len(sky.requests) == n
    sky.logs["abc12345"] += "b\n"
    send(viewer, kind="refresh")
    assert wait_until(lambda: viewer.texts["abc12345"] == "a\nb\n")
    # Not following: the new text arrives through the trait at once (and as an append).
    assert [m["text"] for m in rec.appends()] == ["b\n"]


def test_the_cap_keeps_whole_recent_lines(sky):
    full = "".join(f"line {i:03d}\n" for i in range(100))
    sky.add("abc12345", status="Running", log=full)
    viewer, _ = make_viewer(sky, "abc12345", follow=False, max_chars=50)
    text = viewer.texts["abc12345"]
    assert len(text) <= 50 and text.startswith("line ") and text.endswith("line 099\n")
    assert viewer.dropped["abc12345"] == len(full) - len(text)
    sky.logs["abc12345"] += "line 100\n"
    viewer.refresh().result(5)
    assert viewer.texts["abc12345"].endswith("line 100\n")
    assert len(viewer.texts["abc12345"]) <= 50


def test_several_sessions_and_a_missing_one(sky):
    sky.add("abc12345", status="Running", log="alpha\n")
    sky.add("def67890", status="Completed", log="beta\n")
    viewer, _ = make_viewer(sky, ["abc12345", "def67890", "gone0000", "abc12345"], follow=False)
    assert viewer.ids == ["abc12345", "def67890", "gone0000"]
    assert viewer.texts["abc12345"] == "alpha\n" and viewer.texts["def67890"] == "beta\n"
    assert viewer.states == {"abc12345": "Running", "def67890": "Completed", "gone0000": "missing"}
    assert viewer.error == ""
    assert "abc12345 1 lines (Running)" in repr(viewer)


def test_missing_with_errors_raise_session(sky):
    # info() raises NotFound here; the session reads as missing and following stops.
    viewer = LogViewer("gone0000", sky.session(errors="raise"), follow=True)
    viewer.send = Recorder()
    viewer._initial.result(5)
    assert viewer.states == {"gone0000": "missing"}
    assert wait_until(lambda: not viewer.following)
    assert viewer.error == ""


def test_errors_show_and_keep_the_text(sky):
    sky.add("abc12345", status="Running", log="kept\n")
    viewer, _ = make_viewer(sky, "abc12345", follow=False)
    sky.fail["session/abc12345?view=logs"] = (500, "kaput")
    sky.fail["session/abc12345"] = (500, "kaput")
    viewer.refresh().result(30)
    # A failing read is not a vanished session: the listing still has it.
    assert viewer.states == {"abc12345": "Running"}
    assert viewer.error.startswith("Fetching logs failed for abc12345")
    assert viewer.texts["abc12345"] == "kept\n"
    sky.fail["session"] = (500, "kaput")  # now even the listing fails: a visible error
    with pytest.raises(Exception):  # noqa: B017
        viewer.refresh().result(30)
    assert wait_until(lambda: viewer.error.startswith("Fetching logs failed:"))


def test_static_fallback_is_escaped_and_plain(sky):
    sky.add("abc12345", status="Completed", log="<script>x</script>\n\x1b[32mgreen\x1b[0m\n")
    viewer, _ = make_viewer(sky, "abc12345", follow=False)
    html = viewer._static_html()
    assert "<details open>" in html and "<pre" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "\x1b" not in html and "green" in html
    bundle, _ = viewer._repr_mimebundle_()
    assert bundle["text/plain"] == repr(viewer)
    assert "text/html" in bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_token_never_in_state_or_errors(sky):
    from widget_fakes import TOKEN

    sky.add("abc12345", status="Running", log="hi\n")
    sky.fail["session/abc12345?view=logs"] = (401, f"bad token {TOKEN}")
    viewer = LogViewer("abc12345", sky.session(errors="raise"), follow=False)
    viewer.send = Recorder()
    with pytest.raises(Exception):  # noqa: B017
        viewer._initial.result(5)
    assert wait_until(lambda: viewer.error)
    assert TOKEN not in viewer.error and TOKEN not in repr(viewer.get_state())


def test_strip_ansi():
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[2K!") == "red link !"


def test_needs_an_id(sky):
    with pytest.raises(ValueError):
        LogViewer([], sky.session())


def test_strip_ansi_leaves_no_escape_even_when_removal_joins_a_new_one():
    from canfar_widgets.widgets.logs import strip_ansi

    # Found by hypothesis: removing "\x1b@" from "\x1b[\x1b@m" used to leave "\x1b[m".
    assert strip_ansi("\x1b[\x1b@m") == "[m"
    assert strip_ansi("\x1b[31mred\x1b[0m plain") == "red plain"
