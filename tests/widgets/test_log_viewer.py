"""LogViewer: first fetch, follow with append-only messages, stop when finished, replace on
a restarted log, the cap, errors, several sessions, the static fallback."""

from __future__ import annotations

import threading

import pytest
from widget_fakes import FakeSkaha, send, wait_until

from canfar_widgets.widgets.log_viewer import LogViewer, strip_ansi


class Recorder:
    """Stands in for Widget.send: keeps the custom messages a view would receive."""

    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, content, buffers=None):
        with self.lock:
            self.messages.append(content)

    def appends(self, sid=None):
        return [
            m
            for m in self.messages
            if m.get("kind") == "append" and (sid is None or m["id"] == sid)
        ]


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
    assert wait_until(lambda: not viewer.following and not viewer._subs)
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
    assert viewer.following is False and not viewer._subs
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
    assert (
        strip_ansi("\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07 \x1b[2K!")
        == "red link !"
    )


def test_needs_an_id(sky):
    with pytest.raises(ValueError):
        LogViewer([], sky.session())


def test_strip_ansi_leaves_no_escape_even_when_removal_joins_a_new_one():
    from canfar_widgets.widgets.log_viewer import strip_ansi

    # Found by hypothesis: removing "\x1b@" from "\x1b[\x1b@m" used to leave "\x1b[m".
    assert strip_ansi("\x1b[\x1b@m") == "[m"
    assert strip_ansi("\x1b[31mred\x1b[0m plain") == "red plain"


# -- one poll per session, bounded memory, names, not found (issue 15 items 15, 16, 23) ---------


def test_fifty_viewers_on_one_session_share_one_poll(sky):
    sky.add("abc12345", status="Running", log="start\n")
    session = sky.session()
    viewers = [LogViewer("abc12345", session) for _ in range(50)]
    recorders = []
    for viewer in viewers:
        recorders.append(Recorder())
        viewer.send = recorders[-1]
    for viewer in viewers:
        viewer._initial.result(5)
        send(viewer, kind="visibility", visible=True, view="v")
    feed = viewers[0]._feeds["abc12345"]
    assert all(v._feeds["abc12345"] is feed for v in viewers)
    before_polls, before_requests = feed.polls, len(logs_requests(sky, "abc12345"))
    for i in range(5):
        sky.logs["abc12345"] += f"line {i}\n"
        assert wait_until(lambda i=i: all(v.text().endswith(f"line {i}\n") for v in viewers))
    polls = feed.polls - before_polls
    requests = len(logs_requests(sky, "abc12345")) - before_requests
    assert polls >= 5
    assert requests == polls  # one request per interval, not one per viewer
    # Every viewer got every new line, once.
    for rec in recorders:
        assert "".join(m["text"] for m in rec.appends()) == "".join(f"line {i}\n" for i in range(5))
    for viewer in viewers:
        viewer.close()
    assert wait_until(lambda: not feed.running)


def test_kernel_memory_stays_bounded_by_the_cap_while_a_log_grows(sky, monkeypatch):
    import gc
    import time
    import tracemalloc

    # Only the explicit refreshes below poll: a background poll in flight when the memory
    # is read holds its whole response for a moment (CI once read 8.3 MB that way).
    monkeypatch.setattr(LogViewer, "poll_fast", 3600.0)
    monkeypatch.setattr(LogViewer, "poll_slow", 3600.0)
    line = "x" * 99 + "\n"
    sky.add("abc12345", status="Running", log=line * 1000)
    viewer, rec = make_viewer(sky, "abc12345", max_chars=100_000)
    send(viewer, kind="visibility", visible=True, view="v")
    rec.messages.clear()

    def kept() -> int:
        # What stays, not what a poll or another thread holds for an instant: the least
        # of a few readings a little apart.
        readings = []
        for _ in range(5):
            gc.collect()
            readings.append(tracemalloc.get_traced_memory()[0])
            time.sleep(0.05)
        return min(readings)

    tracemalloc.start()
    try:
        base = kept()
        for _ in range(20):
            sky.logs["abc12345"] += line * 1000  # +100 kB a poll: 2.1 MB in all
            viewer.refresh().result(5)  # the adaptive interval would wait longer
            assert viewer._feeds["abc12345"].value.size == len(sky.logs["abc12345"])
            rec.messages.clear()  # what the fake comm holds is not the widget's memory
        send(viewer, kind="visibility", visible=False, view="v")  # nothing polls now
        held = kept() - base
    finally:
        tracemalloc.stop()
    log_size = len(sky.logs["abc12345"])
    # Beside the fake server's own copy of the log (it grew by 2 MB during the trace), the
    # widget keeps a few caps' worth (the kept text, the last poll's addition, request
    # records), not the 2.1 MB log again: the old code kept the raw text beside the cap.
    assert held - 2_000_000 < 5 * 100_000, held
    assert len(viewer.text()) <= 100_000 and viewer.text().endswith(line)
    assert viewer._logs["abc12345"].dropped == log_size - len(viewer.text())
    send(viewer, kind="visibility", visible=True, view="v")
    send(viewer, kind="resync")  # the traits catch up when a view asks
    assert wait_until(lambda: viewer.dropped.get("abc12345") == log_size - len(viewer.text()))
    viewer.close()


def test_show_all_reads_the_whole_log_once_without_keeping_it(sky):
    full = "".join(f"line {i:03d}\n" for i in range(100))
    sky.add("abc12345", status="Completed", log=full)
    viewer, rec = make_viewer(sky, "abc12345", follow=False, max_chars=50)
    n = len(logs_requests(sky, "abc12345"))
    send(viewer, kind="show_all", id="abc12345", purpose="download")
    assert wait_until(lambda: [m for m in rec.messages if m.get("kind") == "all"])
    [message] = [m for m in rec.messages if m.get("kind") == "all"]
    assert message == {"kind": "all", "id": "abc12345", "text": full, "purpose": "download"}
    assert len(logs_requests(sky, "abc12345")) == n + 1
    assert len(viewer.text()) <= 50  # still only the cap is kept
    assert viewer.fetch_all().result(5) == full


def test_names_come_from_the_platform(sky):
    sky.add("b24madfl", status="Running", log="a\n")
    sky.sessions["b24madfl"]["name"] = "multi2-1"
    sky.add("k3x9ab2q", status="Completed", log="b\n")
    sky.sessions["k3x9ab2q"]["name"] = "multi2-2"
    viewer, _ = make_viewer(sky, ["b24madfl", "k3x9ab2q"], follow=False)
    assert viewer.names == {"b24madfl": "multi2-1", "k3x9ab2q": "multi2-2"}
    assert viewer.name("k3x9ab2q") == "multi2-2"
    assert "multi2-1 (b24madfl)" in repr(viewer)
    assert "Logs of multi2-2 (k3x9ab2q)" in viewer._static_html()


@pytest.mark.parametrize("follow", [True, False])
def test_an_unknown_id_says_one_clear_not_found(sky, follow):
    viewer, _ = make_viewer(sky, "nosuchid", follow=follow)
    assert wait_until(lambda: not viewer.following)
    assert viewer.states == {"nosuchid": "missing"}
    assert wait_until(lambda: viewer.status == "Session nosuchid not found.")
    assert "finished" not in viewer.status
    assert viewer.error == ""


def test_not_found_beside_a_finished_session(sky):
    sky.add("abc12345", status="Completed", log="done\n")
    viewer, _ = make_viewer(sky, ["abc12345", "nosuchid"])
    assert wait_until(lambda: not viewer.following)
    assert wait_until(lambda: viewer.status.startswith("Session nosuchid not found."))
    assert "All sessions have finished" in viewer.status


def test_a_big_growing_log_is_read_less_often():
    from canfar_widgets.widgets._source import SessionSource
    from canfar_widgets.widgets.log_feed import LogFeed, LogState

    feed = LogFeed(SessionSource.of(FakeSkaha().session()), "abc12345", fast=2, slow=15)
    feed.value = LogState(state="Running", size=10_000, seq=1)
    assert feed.interval() == 2  # a small log: the fast interval
    feed._rate = 630_000.0  # 12.6 MB over 20 s
    feed.value = LogState(state="Running", size=6_300_000, seq=2)
    assert 8 < feed.interval() < 10  # about the time it took to write: ~2.5x the log read in all
    feed.value = LogState(state="Running", size=500_000_000, seq=3)
    assert feed.interval() == feed.max_interval
    feed.value = LogState(state="Completed", size=6_300_000, seq=4)
    assert feed.interval() == 15  # not active: the poller's own slow interval


def test_following_sends_each_character_once(sky):
    """Appends only while following; when it stops, the traits catch up without a re-send."""
    sky.add("abc12345", status="Running", log="one\n")
    viewer = LogViewer("abc12345", sky.session())
    wire: list[dict] = []
    viewer._send = lambda msg, buffers=None: wire.append(msg)
    viewer._initial.result(5)
    send(viewer, kind="visibility", visible=True, view="v")
    assert wait_until(lambda: viewer.following)
    for i in range(3):
        sky.logs["abc12345"] += f"line {i}\n"
        assert wait_until(lambda i=i: viewer.text().endswith(f"line {i}\n"))
    sky.sessions["abc12345"]["status"] = "Completed"
    assert wait_until(lambda: not viewer.following)
    assert (
        viewer.texts["abc12345"] == "one\nline 0\nline 1\nline 2\n"
    )  # the kernel's copy is current
    appended = "".join(
        m["content"]["text"]
        for m in wire
        if m.get("method") == "custom" and m["content"].get("kind") == "append"
    )
    assert appended == "line 0\nline 1\nline 2\n"
    texts_sent = [
        m["state"]["texts"] for m in wire if m.get("method") == "update" and "texts" in m["state"]
    ]
    assert all("line" not in t.get("abc12345", "") for t in texts_sent), texts_sent
    viewer.close()


def test_a_burst_beyond_the_cap_is_sent_as_its_kept_tail(sky):
    sky.add("abc12345", status="Running", log="start\n")
    viewer, rec = make_viewer(sky, "abc12345", max_chars=50)
    send(viewer, kind="visibility", visible=True, view="v")
    start = viewer.ends["abc12345"]
    burst = "".join(f"line {i:03d}\n" for i in range(30))  # 270 characters in one poll
    sky.logs["abc12345"] += burst
    assert wait_until(lambda: rec.appends())
    [message] = rec.appends()
    assert message["start"] == start and message["text"] == viewer.text()
    assert len(message["text"]) <= 50 and message["text"].endswith("line 029\n")
    assert message["skip"] == len(burst) - len(message["text"])  # left out between
    send(viewer, kind="resync")
    assert wait_until(lambda: viewer.ends["abc12345"] == start + len(burst))
    assert viewer.dropped["abc12345"] == len("start\n") + len(burst) - len(viewer.text())
    viewer.close()
