"""BatchView and the batch hooks against the local platform: real HTTP, real processes.

The job (`batch_support.JOB`) raises ``ValueError`` on the replicas listed in ``FAIL``.
The widget is driven as the front end drives it: by its messages, with no browser.
"""

from __future__ import annotations

import io
import sys
import threading
import time
import zipfile
from typing import Any

import pytest
from batch_support import IMAGE, launch

from canfar_widgets.widgets import BatchView, watch
from canfar_widgets.widgets._source import SessionSource
from canfar_widgets.widgets.batch_view import describe_failures, failure_groups

pytestmark = pytest.mark.slow


@pytest.fixture
def session(session: Any) -> Any:
    """The batch tests' client, with the shared feed polling fast."""
    source = SessionSource.of(session)
    source.feed.fast = source.feed.slow = 0.2
    return session


class Sent:
    """What the widget sent its views (custom messages), recorded in order."""

    def __init__(self, widget: BatchView) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        original = widget.send

        def record(content: Any, buffers: Any = None) -> None:
            self.messages.append((content, list(buffers or [])))
            original(content, buffers)

        widget.send = record  # type: ignore[method-assign]

    def of(self, kind: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [m for m in self.messages if m[0].get("kind") == kind]


def until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def message(widget: BatchView, **content: Any) -> None:
    widget._dispatch_message(widget, content, [])


def test_failures_grouped_retry_download_delete(platform, session, record_file, job):
    batch = launch(
        "scan",
        job,
        session,
        replicas=6,
        env={"FAIL": "2,4,5", "WHY": "bad frame in field-017.fits"},
    )
    view = BatchView(batch)
    sent = Sent(view)
    message(view, kind="visibility", visible=True, view="v1")
    until(lambda: view.finished)
    assert view.name == "scan" and view.total == 6
    assert view.counts == {"Completed": 3, "Failed": 3}
    assert view.failed == 3 and view.retry_reason == ""
    [group] = view.failures
    assert group["count"] == 3 and group["replicas"] == [2, 4, 5]
    assert group["label"] == "ValueError: bad frame in field-017.fits"
    assert (
        describe_failures(view.failures) == "3 failed: 3 × ValueError: bad frame in field-017.fits"
    )
    # The rows carry names and replica numbers; a snapshot sends them all.
    message(view, kind="snapshot", have=-1)
    rows = {r["replica"]: r for r in view.rows}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert rows[2]["name"] == "scan-2" and rows[2]["status"] == "Failed"
    assert rows[2]["line"] == "ValueError: bad frame in field-017.fits"
    assert rows[1]["status"] == "Completed" and rows[1]["started"] and rows[1]["ended"]

    # Logs and Events of a replica, by its name.
    message(view, kind="open", view="logs", replica=4)
    until(lambda: not view.detail.get("loading", True))
    assert view.detail["name"] == "scan-4" and "ValueError" in view.detail["text"]
    message(view, kind="open", view="events", replica=4)
    until(lambda: view.detail.get("view") == "events" and not view.detail["loading"])
    assert "BackoffLimitExceeded" in view.detail["text"]

    # Download logs: one zip, one file per replica named by replica and name.
    view.download_logs().result(timeout=30)
    [(content, buffers)] = sent.of("download")
    assert content["filename"] == "scan-logs.zip"
    with zipfile.ZipFile(io.BytesIO(buffers[0])) as archive:
        names = sorted(archive.namelist())
        assert names == [f"scan-logs/replica-{n}_scan-{n}.log" for n in range(1, 7)]
        assert "ValueError" in archive.read("scan-logs/replica-2_scan-2.log").decode()
    assert view.message.startswith("Downloaded scan-logs.zip: 6 logs")

    # Selecting a group (front-end owned) then retrying: exactly the failed ones re-run.
    view.group = group["key"]
    posts = platform.request_count("POST", "session")
    message(view, kind="retry")
    until(lambda: view.message.startswith("Re-running"))
    assert view.message == "Re-running 3 failed replicas: 2, 4, 5."
    assert platform.request_count("POST", "session") - posts == 3
    # The re-run ones fail again (same env): their rows update to attempt 2.
    until(
        lambda: (
            view.finished and all(r.attempt == 2 for r in batch.replicas if r.replica in (2, 4, 5))
        )
    )
    until(lambda: view.message == "")  # what it said is no longer true: they finished
    assert [r.attempt for r in batch.replicas] == [1, 2, 1, 2, 2, 1]
    patched = [row for content, _ in sent.of("patch") for row in content["upsert"]]
    assert {row["replica"] for row in patched if row["attempt"] == 2} == {2, 4, 5}

    # Alerts: a first failure and the finish were announced to the views, once each.
    alerts = [c for c, _ in sent.of("alert")]
    assert [a["event"] for a in alerts].count("finished") >= 1
    assert all(a["title"].startswith("Batch scan") for a in alerts)

    # Delete: sessions gone, the record stays, Retry is disabled with a reason.
    message(view, kind="delete")
    until(lambda: view.message.startswith("Deleted"))
    assert view.message.startswith("Deleted 6 sessions of batch scan")
    until(lambda: view.destroyed)
    assert view.retry_reason.startswith("The batch was deleted")
    assert "ValueError" in batch.logs([2])[2]  # from the archive
    view.close()


def test_a_poll_sends_only_changed_rows(platform, session, record_file, job):
    batch = launch("quiet", job, session, replicas=8, env={"SLEEP": "1.5", "FAIL": "3"})
    view = BatchView(batch)
    sent = Sent(view)
    message(view, kind="visibility", visible=True, view="v1")
    until(lambda: view.finished)
    listings_before = platform.request_count("GET", "session")
    sizes = [len(c["upsert"]) for c, _ in sent.of("patch")]
    # Each patch carries only the rows that changed; quiet polls send none.
    assert sizes and all(0 < n <= 8 for n in sizes)
    count = len(sent.of("patch"))
    view.refresh().result(timeout=10)
    time.sleep(0.6)
    assert len(sent.of("patch")) == count  # nothing changed: nothing sent
    assert platform.request_count("GET", "session") > listings_before  # it did poll
    view.close()


def test_watch_of_a_batch_is_its_view_and_display_is_lazy(platform, session, record_file, job):
    batch = launch("shown", job, session, replicas=2)
    view = watch(batch)
    assert isinstance(view, BatchView) and view is BatchView.of(batch)
    assert "batch shown" in repr(view)
    assert "Batch shown" in view._static_html()
    view.close()
    again = BatchView.of(batch)
    assert again is not view  # a closed view is not handed out again
    again.close()  # or its share of the feed would poll on after this test


def test_retry_disabled_when_nothing_failed(platform, session, record_file, job):
    batch = launch("fine", job, session, replicas=2)
    view = BatchView(batch)
    message(view, kind="visibility", visible=True, view="v1")
    until(lambda: view.finished)
    assert view.failed == 0 and view.retry_reason == "Nothing failed."
    posts = platform.request_count("POST", "session")
    assert view.retry_failed().result(timeout=30) == []
    assert platform.request_count("POST", "session") == posts
    assert view.message == "Nothing re-run: Nothing failed."
    assert view.eta_at == 0.0 and view.finished_at > 0
    view.close()


def test_groups_by_reason_and_last_line():
    class Row:
        def __init__(self, replica: int, reason: str, line: str) -> None:
            self.replica, self.reason, self.last_line = replica, reason, line

    rows = [
        Row(1, "non-zero exit (exit code 1)", "ValueError: bad frame in field-017.fits"),
        Row(2, "out of memory", "Killed"),
        Row(3, "non-zero exit (exit code 1)", "ValueError: bad frame in field-017.fits"),
        Row(5, "non-zero exit (exit code 1)", "ValueError: bad frame in field-017.fits"),
    ]
    groups = failure_groups(rows)
    assert [(g["count"], g["label"], g["replicas"]) for g in groups] == [
        (3, "ValueError: bad frame in field-017.fits", [1, 3, 5]),
        (1, "out of memory", [2]),
    ]
    assert describe_failures(groups) == (
        "4 failed: 3 × ValueError: bad frame in field-017.fits, 1 × out of memory"
    )


# -- hooks -------------------------------------------------------------------------------------


def test_hooks_run_once_per_event_on_the_waiting_thread(platform, session, record_file, job):
    batch = launch("hooked", job, session, replicas=4, env={"FAIL": "2,3"})
    calls: list[tuple[str, Any, str]] = []
    batch.on_failed(
        lambda r: calls.append(("failed", (r.replica, r.attempt), threading.current_thread().name))
    )
    batch.on_finished(
        lambda b: calls.append(("finished", dict(b.counts), threading.current_thread().name))
    )
    batch.wait(timeout=60)
    main = threading.current_thread().name
    assert sorted(c[1] for c in calls if c[0] == "failed") == [(2, 1), (3, 1)]
    assert [c[1] for c in calls if c[0] == "finished"] == [{"Completed": 2, "Failed": 2}]
    assert {c[2] for c in calls} == {main}
    batch.refresh()
    batch.wait(timeout=30)
    assert len(calls) == 3  # nothing new: nothing said again
    # A re-run is a new attempt: its failure and the batch's new finish are new events.
    batch.rerun([2])
    batch.wait(timeout=60)
    assert [c[1] for c in calls if c[0] == "failed"][-1] == (2, 2)
    assert [c[0] for c in calls].count("finished") == 2
    batch.destroy()


def test_a_hook_that_raises_does_not_stop_the_others(platform, session, record_file, job, capsys):
    batch = launch("raising", job, session, replicas=1)
    seen: list[str] = []

    def broken(_batch: Any) -> None:
        raise RuntimeError("callback bug")

    batch.on_finished(broken)
    batch.on_finished(lambda b: seen.append(b.name))
    batch.wait(timeout=60)
    assert seen == ["raising"]
    assert "callback bug" in capsys.readouterr().err
    with pytest.raises(TypeError, match="on_finished: expected a callable"):
        batch.on_finished("not callable")  # type: ignore[arg-type]


def test_a_sync_session_call_inside_a_hook_works(platform, session, record_file, job):
    batch = launch("nested", job, session, replicas=1)
    found: list[int] = []
    batch.on_finished(lambda b: found.append(len(session.fetch())))
    batch.wait(timeout=60)
    assert found and found[0] >= 1


def test_watch_of_ids_shows_names_and_replica_numbers(platform, session, record_file, job):
    ids = [
        session.create(name=f"mosaic-{n}", image=IMAGE, cmd=sys.executable, args=str(job))[0]
        for n in (1, 2)
    ]
    ids += session.create(name="single", image=IMAGE, cmd=sys.executable, args=str(job))
    watcher = watch(ids, session)
    watcher.wait(timeout=60)
    assert watcher.labels == {
        ids[0]: {"name": "mosaic-1", "replica": 1},
        ids[1]: {"name": "mosaic-2", "replica": 2},
        ids[2]: {"name": "single", "replica": 0},
    }
    watcher.close()


def test_ipython_shows_a_batch_as_its_view_without_batches_importing_widgets(monkeypatch):
    # canfar_widgets registers the display by type name, so the batches package needs no
    # import of the widget layer (no circle) and a batch alone in a cell still shows its view.
    from IPython.core.interactiveshell import InteractiveShell

    import canfar_widgets
    from canfar_widgets.batches.batch import Batch
    from canfar_widgets.widgets import batch_view

    shell = InteractiveShell.instance()
    try:
        canfar_widgets.register_displays()
        shown: list[object] = []
        monkeypatch.setattr(batch_view, "show_batch", shown.append)
        batch = Batch.__new__(Batch)  # only its type matters to the display
        assert shell.display_formatter.ipython_display_formatter(batch) is True
        assert shown == [batch]
    finally:
        InteractiveShell.clear_instance()


def test_notify_me_keeps_a_hidden_view_polling_until_the_batch_ends(
    platform, session, record_file, job
):
    # A background tab reports its views hidden, which pauses polling; with "Notify me" on
    # the batch must still be followed, or its finish could never be announced.
    batch = launch("unseen", job, session, replicas=2, env={"SLEEP": "1"})
    view = BatchView(batch)
    [sub] = view._subscriptions  # its share of the session's feed
    message(view, kind="visibility", visible=True, view="v1")
    message(view, kind="visibility", visible=False, view="v1")
    assert not sub.visible  # nobody looks and nobody asked: no polling
    view.notify = True  # what the "Notify me" click sets
    assert sub.visible
    until(lambda: view.finished)
    until(lambda: not sub.visible)  # finished: a hidden view stops polling again
    assert view.counts == {"Completed": 2}
    view.close()
