"""watch()/BatchWatch: counts by state from the shared feed, missing sessions, wait() and
wait_async() with and without views, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest
from widget_fakes import FakeSkaha, send, wait_until

from canfar_widgets.widgets import BatchWatch, watch
from canfar_widgets.widgets._source import SessionSource


@pytest.fixture
def sky():
    return FakeSkaha()


_KEEP: list[
    SessionSource
] = []  # SessionSource.of caches weakly: keep ours alive so watch() reuses it


def fast_session(sky, **kwargs):
    session = sky.session(**kwargs)
    source = SessionSource.of(session)
    source.feed.fast = source.feed.slow = 0.05
    _KEEP.append(source)
    return session


def later(seconds, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def listings(sky):
    return [r for r in sky.made("GET", "session") if "view" not in r.url.params]


def test_counts_by_state_and_missing(sky):
    for sid, status in [("a0000001", "Pending"), ("a0000002", "Running"), ("a0000003", "Completed"),
                        ("a0000004", "Failed (DeadlineExceeded)"), ("a0000005", "Terminating")]:  # fmt: skip
        sky.add(sid, status=status)
    batch = watch(
        ["a0000001", "a0000002", "a0000003", "a0000004", "a0000005", "gone0001"], fast_session(sky)
    )
    batch._first.result(5)
    assert batch.counts == {"Pending": 1, "Running": 1, "Completed": 1, "Failed": 1,
                            "Terminating": 1, "missing": 1}  # fmt: skip
    assert batch.total == 6 and batch.done == 3 and batch.finished is False
    assert batch.missing == ["gone0001"]
    assert batch.states["a0000004"] == "Failed"
    assert batch.status.startswith("3 of 6 finished")
    # The missing one was confirmed with a GET of that session, not guessed from the list.
    assert sky.made("GET", "session/gone0001")
    assert "3 of 6 finished" in repr(batch)
    assert "<progress max='6' value='3'>" in batch._static_html()
    batch.close()


def test_a_new_session_not_yet_listed_is_not_missing(sky):
    sky.add("new00009", status="Pending")
    hidden = sky.sessions.pop("new00009")  # not in the listing...
    original = sky.handle

    def handle(request):
        rel = str(request.url.copy_with(query=None))
        if rel.endswith("/session/new00009"):  # ...but GET of the session finds it
            sky.sessions["new00009"] = hidden
            try:
                return original(request)
            finally:
                sky.sessions.pop("new00009")
        return original(request)

    sky.handle = handle
    batch = watch("new00009", fast_session(sky))
    batch._first.result(5)
    assert batch.states == {"new00009": "Pending"} and batch.missing == []
    batch.close()


def test_wait_blocks_until_all_finished_with_no_view(sky):
    sky.add("b0000001", status="Running")
    sky.add("b0000002", status="Pending")
    batch = watch(["b0000001", "b0000002"], fast_session(sky))
    batch._first.result(5)
    n = len(listings(sky))
    threading.Event().wait(0.2)
    assert len(listings(sky)) == n  # no view, no wait: no polling

    def finish():
        sky.sessions["b0000001"]["status"] = "Completed"
        sky.sessions["b0000002"]["status"] = "Failed"

    threads = []
    batch.observe(lambda change: threads.append(threading.current_thread().name), names="counts")
    later(0.3, finish)
    records = batch.wait(timeout=10)
    # The progress kept updating while wait() blocked this thread: from the runner's thread.
    assert threads and set(threads) == {"canfar-widgets-loop"}
    assert [(r.id, r.state) for r in records] == [("b0000001", "Completed"), ("b0000002", "Failed")]
    assert batch.finished and batch.finished_at >= batch.started_at
    assert batch.counts["Completed"] == 1 and batch.counts["Failed"] == 1
    assert batch.status.startswith("All 2 finished")
    assert batch._sub is None  # stopped watching
    assert batch.wait() == records  # later waits return at once


def test_deleted_sessions_count_as_finished(sky):
    sky.add("c0000001", status="Running")
    sky.add("c0000002", status="Completed")
    batch = watch(["c0000001", "c0000002"], fast_session(sky))
    later(0.2, lambda: sky.sessions.pop("c0000001"))
    records = batch.wait(timeout=10)
    assert [r.id for r in records] == ["c0000002"]
    assert batch.missing == ["c0000001"]
    assert batch.counts["missing"] == 1 and batch.done == 2


def test_wait_timeout_and_visibility_restored(sky):
    sky.add("d0000001", status="Running")
    batch = watch("d0000001", fast_session(sky))
    with pytest.raises(TimeoutError):
        batch.wait(timeout=0.3)
    # The cancelled wait unwinds on the runner thread right after.
    assert wait_until(lambda: batch._waiters == 0 and batch._sub.visible is False)
    # A view makes it poll; the view going away stops it.
    send(batch, kind="visibility", visible=True, view="v")
    assert batch._sub.visible
    send(batch, kind="visibility", visible=False, view="v")
    assert not batch._sub.visible
    batch.close()


async def test_wait_async_and_cancellation(sky):
    sky.add("e0000001", status="Running")
    batch = watch(["e0000001"], fast_session(sky))
    first = asyncio.ensure_future(batch.wait_async())
    await asyncio.sleep(0.1)
    first.cancel()  # a cancelled wait must not spoil the next one
    with pytest.raises(asyncio.CancelledError):
        await first
    later(0.2, lambda: sky.sessions["e0000001"].update(status="Completed"))
    records = await batch.wait_async(timeout=10)
    assert [r.state for r in records] == ["Completed"]
    batch.close()
    sky.add("e0000002", status="Running")
    never = watch("e0000002", fast_session(sky))
    with pytest.raises(TimeoutError):
        await never.wait_async(timeout=0.2)
    never.close()


def test_feed_errors_show(sky):
    sky.add("f0000001", status="Running")
    sky.fail["session"] = (500, "down")
    batch = watch("f0000001", fast_session(sky, retries=False))
    assert wait_until(lambda: batch.error.startswith("Checking the batch failed"))
    batch.close()


def test_ids_are_required_and_normalised(sky):
    with pytest.raises(ValueError):
        BatchWatch([], sky.session())
    sky.add("g0000001", status="Completed")
    batch = watch(["g0000001", " g0000001 "], fast_session(sky))
    assert batch.ids == ["g0000001"] and batch.total == 1
    assert batch.wait(timeout=5)[0].id == "g0000001"


def test_end_to_end_on_the_local_platform():
    """Launch a real headless batch, watch it to the end, read its logs and events."""
    from canfar_widgets.local import LocalPlatform
    from canfar_widgets.widgets.events_view import EventsView
    from canfar_widgets.widgets.launch_form import LaunchForm
    from canfar_widgets.widgets.log_viewer import LogViewer

    with LocalPlatform() as platform:
        session = platform.session()
        source = SessionSource.of(session)
        source.feed.fast = source.feed.slow = 0.1
        form = LaunchForm(session, kind="headless", cmd="echo", args="hello world", replicas=2)
        form._ready.result(10)
        assert wait_until(lambda: form.images.get("headless"))
        form.image = "images.canfar.net/skaha/terminal:1.1.2"
        ids = form.launch().result(10)
        assert len(ids) == 2 and form.last_launched == ids and form.error == ""
        batch = watch(ids, session)
        records = batch.wait(timeout=30)
        assert [r.state for r in records] == ["Completed", "Completed"]
        viewer = LogViewer(ids, session)
        viewer._initial.result(10)
        assert viewer.texts == dict.fromkeys(ids, "hello world\n")
        assert wait_until(lambda: not viewer.following)  # finished: nothing to follow
        events = EventsView(ids, session)
        events._initial.result(10)
        assert all(any(e["reason"] == "Completed" for e in events.events[i]) for i in ids)
        for widget in (form, batch, viewer, events):
            widget.close()
