"""A launch anywhere in the process makes the widgets' session feeds poll fast (issue 15, item 9)."""

from __future__ import annotations

import gc
import sys
import time

import pytest
from widget_fakes import FakeSkaha, wait_until

from canfar_widgets import launches
from canfar_widgets.runner import get_runner

pytestmark = pytest.mark.usefixtures("fresh_widgets")


def test_listeners_hear_every_launch_and_stop_when_told():
    heard = []
    stop = launches.on_launch(heard.append)
    launches.announce(["a", "b"])
    stop()
    launches.announce(["c"])
    assert heard == [["a", "b"]]


def test_a_broken_listener_does_not_break_a_launch():
    def bad(ids):
        raise RuntimeError("boom")

    heard = []
    stops = [launches.on_launch(bad), launches.on_launch(heard.append)]
    launches.announce(["x"])
    for stop in stops:
        stop()
    assert heard == [["x"]]


def test_a_bound_method_listener_is_held_weakly():
    class Listener:
        def __init__(self):
            self.heard = []

        def hear(self, ids):
            self.heard.append(ids)

    listener = Listener()
    launches.on_launch(listener.hear)
    entry = launches._listeners[-1]  # this listener's (others' may be dead already)
    held = entry[0]
    launches.announce(["1"])
    assert listener.heard == [["1"]]
    assert entry in launches._listeners and held() is not None
    del listener
    gc.collect()
    assert held() is None  # held weakly: nothing else kept it alive
    launches.announce(["2"])  # the dead one is dropped, nothing raised
    assert entry not in launches._listeners


def test_a_listener_of_one_platform_hears_only_that_platform_and_unnamed_ones():
    heard = []
    stop = launches.on_launch(heard.append, platform="https://a.test/skaha/v1/")
    try:
        launches.announce(["here"], platform="https://a.test/skaha/v1")  # slash or not
        launches.announce(["there"], platform="http://127.0.0.1:8765/skaha/v1/")
        launches.announce(["unsaid"])  # the official client does not say where
    finally:
        stop()
    assert heard == [["here"], ["unsaid"]]


def test_the_client_announces_its_launches():
    sky = FakeSkaha()
    heard = []
    stop = launches.on_launch(heard.append)
    try:
        session = sky.session()
        ids = get_runner().run(
            session.create(
                "job", image="images.canfar.net/skaha/terminal:1.1.2", cmd="echo", replicas=2
            )
        )
    finally:
        stop()
    assert heard == [ids] and len(ids) == 2


def test_a_cell_launch_with_another_session_object_hurries_the_table():
    """The quickstart: a Dashboard above, ``Session().create(...)`` in a later cell."""
    from canfar_widgets import SessionTable

    sky = FakeSkaha()
    sky.add("nb000001", status="Running", kind="notebook", name="analysis")
    table = SessionTable(sky.session())
    try:
        table.refresh().result(5)
        table.refresh().result(5)
        table.refresh().result(5)
        assert table.feed.interval() >= 15  # stable: slow or idle
        polls = table.feed.polls
        # A different session object on the same platform, as a cell would make.
        other = sky.session()
        ids = get_runner().run(
            other.create("job", image="images.canfar.net/skaha/terminal:1.1.2", cmd="sleep")
        )
        assert wait_until(lambda: set(ids) <= {r.id for r in table.records}, timeout=5)
        assert table.feed.polls > polls
        assert table.feed.interval() == 2.0  # fast for a while after the launch
        assert table.feed._hot_until > time.monotonic() + 30
    finally:
        table.close()


def test_a_launch_on_another_platform_does_not_hurry_the_table():
    """A job on the local platform must not make a table of another platform poll.

    Why it matters beyond requests: a table whose platform has gone (a stopped local
    platform) would retry against it on every launch anywhere in the process.
    """
    from canfar_widgets import SessionTable

    sky, elsewhere = FakeSkaha(), FakeSkaha(base="http://127.0.0.1:8765/skaha/v1/")
    sky.add("nb000001", status="Running", kind="notebook", name="analysis")
    table = SessionTable(sky.session())
    other = elsewhere.session()
    try:
        for _ in range(3):
            table.refresh().result(5)
        polls, hot = table.feed.polls, table.feed._hot_until
        ids = get_runner().run(
            other.create("job", image="images.canfar.net/skaha/terminal:1.1.2", cmd="sleep")
        )
        assert len(ids) == 1 and ids[0] in elsewhere.sessions
        time.sleep(0.3)  # a hurried feed polls at once; give it the chance to
        assert table.feed.polls == polls and table.feed._hot_until == hot
        assert table.feed.interval() >= 15  # still slow: nothing changed on its platform
    finally:
        table.close()
        get_runner().run(other.aclose(), timeout=10)


def test_import_of_the_client_does_not_import_widgets():
    import subprocess

    code = (
        "import sys, canfar_widgets.sessions, canfar_widgets.launches; "
        "print(any(m.startswith(('ipywidgets', 'anywidget', 'canfar_widgets.widgets')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unchanged_listing_is_not_decoded_again(monkeypatch):
    """Refresh with nothing changed (issue 16): same bytes -> the very same records."""
    from canfar_widgets import sessions
    from canfar_widgets.widgets import _adapters
    from canfar_widgets.widgets._source import SessionSource

    sky = FakeSkaha()
    sky.add("nb000001", status="Running", kind="notebook", name="analysis")
    sky.add("job00001", status="Pending", kind="headless", name="batch-1")
    source = SessionSource.of(sky.session())
    first = get_runner().run(source.fetch())
    decodes = []
    real = sessions._json_list_of_records
    monkeypatch.setattr(_adapters, "_json_list_of_records", lambda r: decodes.append(1) or real(r))
    second = get_runner().run(source.fetch())
    assert second is first and decodes == []
    sky.sessions["job00001"]["status"] = "Running"
    third = get_runner().run(source.fetch())
    assert decodes == [1] and third is not first
    # Only the changed record is a new object; the other is reused.
    by_id = {r.id: r for r in third}
    assert by_id["nb000001"] is {r.id: r for r in first}["nb000001"]
    assert by_id["job00001"].state == "Running"


def test_a_listing_that_is_not_a_list_is_refused_as_fetch_refuses_it():
    from canfar_widgets.errors import UnexpectedAnswer
    from canfar_widgets.widgets._source import SessionSource

    sky = FakeSkaha()
    sky.fail["session"] = (200, '{"not": "a list"}')
    source = SessionSource.of(sky.session())
    with pytest.raises(UnexpectedAnswer):
        get_runner().run(source.fetch())


def test_a_short_job_launched_from_a_cell_is_seen_while_it_runs():
    """The quickstart's sentence, on the local platform with a real process (item 9).

    A table is on screen and all is stable (slow/idle); a cell launches a 4 s job through
    another session object. Before, nothing told the table, which next polled 15 s
    later and saw the job Completed, if at all; now the launch makes it poll fast.
    """
    from canfar_widgets import SessionTable
    from canfar_widgets.local import LocalPlatform
    from canfar_widgets.sessions import AsyncSession

    with LocalPlatform(headless_start_delay=0.1) as platform:
        session = AsyncSession(url=platform.url, token=platform.token)
        table = SessionTable(session)
        seen: dict[str, set[str]] = {}

        def record(records, error):
            for r in records or []:
                seen.setdefault(r.id, set()).add(r.state)

        sub = table.feed.subscribe(record)
        table._dispatch_message(table, {"kind": "visibility", "visible": True, "view": "v"}, [])
        cell = platform.session()
        try:
            for _ in range(3):
                table.refresh().result(10)
            assert table.feed.interval() >= 15  # stable: the next poll is far away
            [job] = cell.create(
                "short", image="images.canfar.net/skaha/terminal:1.1.2", cmd="sleep", args="4"
            )
            assert wait_until(lambda: "Running" in seen.get(job, set()), timeout=6)
            assert wait_until(lambda: "Completed" in seen.get(job, set()), timeout=15)
        finally:
            sub.close()
            table.close()
            cell.close()
            get_runner().run(session.aclose(), timeout=10)
