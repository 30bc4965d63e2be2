"""The widget foundation: CanfarWidget (messages, visibility, errors, traffic) and SessionSource
(any session object -> async calls on the runner, one per session, secrets scrubbed)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
from typing import Any, ClassVar

import httpx
import httpx2
import pytest
from widget_fakes import BASE, TOKEN, FakeSkaha, send, wait_until

from canfar_widgets import launches
from canfar_widgets.errors import describe_error
from canfar_widgets.models import ContainerRegistry, CreateRequest, Event, SessionRecord
from canfar_widgets.runner import get_runner
from canfar_widgets.sessions import Session
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets._source import SessionFeed, SessionSource
from canfar_widgets.widgets._traffic import measure_traffic
from canfar_widgets.widgets.feed import Poller

pytestmark = pytest.mark.usefixtures("fresh_widgets")


@pytest.fixture
def sky() -> FakeSkaha:
    sky = FakeSkaha()
    sky.add(
        "aaa11111",
        status="Running",
        kind="notebook",
        log="hello\n",
        events="TYPE     REASON   MESSAGE\nNormal   Pulled   pulled image\n",
    )
    sky.add("bbb22222", status="Pending")
    return sky


class Probe(CanfarWidget):
    """A minimal widget on the base class (no front end of its own)."""

    def __init__(self, session: Any = None, poller: Poller[Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._attach(session)
        self.seen: list[Any] = []
        if poller is not None:
            self.sub = self._track(poller, lambda value, error: self.seen.append((value, error)))

    def _on_boom(self, content: dict[str, Any]) -> None:
        raise RuntimeError(f"exploded with {TOKEN}")

    _messages: ClassVar[Messages] = {"boom": _on_boom}


def run(coro):
    return get_runner().run(coro, timeout=10)


# -- SessionSource -----------------------------------------------------------------------------------


def test_one_source_per_session_object(sky):
    session = sky.session()
    a, b = SessionSource.of(session), SessionSource.of(session)
    assert a is b and a.feed is b.feed
    assert isinstance(a.feed, SessionFeed)
    assert SessionSource.of(a) is a
    assert SessionSource.of(sky.session()) is not a


def test_source_cache_is_weak(sky):
    session = sky.session()
    source = SessionSource.of(session)
    key = id(session)
    del source
    gc.collect()
    assert key not in SessionSource._cache or SessionSource._cache[key]() is None


def test_session_none_builds_session_from_environment(monkeypatch, respx_mock):
    monkeypatch.setenv("CANFAR_URL", BASE)
    monkeypatch.setenv("CANFAR_TOKEN", TOKEN)
    respx_mock.get(BASE + "session").mock(
        return_value=httpx.Response(200, json=[{"id": "x1", "status": "Running"}])
    )
    source = SessionSource.of(None)
    assert SessionSource.of() is source
    records = run(source.fetch())
    assert [r.id for r in records] == ["x1"]
    assert respx_mock.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


def test_fetch_returns_records_and_reuses_unchanged_ones(sky):
    source = SessionSource.of(sky.session())
    first = run(source.fetch())
    assert all(isinstance(r, SessionRecord) for r in first)
    assert {r.id for r in first} == {"aaa11111", "bbb22222"}
    sky.sessions["bbb22222"]["status"] = "Running"
    second = {r.id: r for r in run(source.fetch())}
    before = {r.id: r for r in first}
    assert second["aaa11111"] is before["aaa11111"]  # unchanged: same object
    assert second["bbb22222"] is not before["bbb22222"]
    assert second["bbb22222"].state == "Running"


def test_fetch_filters_go_to_the_server(sky):
    source = SessionSource.of(sky.session())
    run(source.fetch(kind="headless", status="Pending"))
    params = dict(sky.made("GET", "session")[-1].url.params)
    assert params == {"type": "headless", "status": "Pending"}


def test_calls_run_on_the_runner_thread_even_when_awaited_elsewhere(sky):
    source = SessionSource.of(
        Session(url=BASE, token=TOKEN, transport=httpx.MockTransport(sky.handle))
    )
    threads: list[str] = []
    sky.on_request = lambda request: threads.append(threading.current_thread().name)
    records = asyncio.run(source.info("aaa11111"))  # another loop entirely
    assert [r.id for r in records] == ["aaa11111"]
    assert threads == [get_runner().name]


def test_logs_events_stats_context_images(sky):
    source = SessionSource.of(sky.session())
    assert run(source.logs(["aaa11111"])) == {"aaa11111": "hello\n"}
    events = run(source.events("aaa11111"))
    assert list(events) == ["aaa11111"]
    assert all(isinstance(e, Event) for e in events["aaa11111"])
    assert events["aaa11111"][0].reason == "Pulled"
    stats = run(source.stats())
    assert stats.model_dump()  # parsed
    context = run(source.context())
    assert context.model_dump()
    images = run(source.images("carta"))
    assert [i.id for i in images] == ["images.canfar.net/skaha/carta:4.0"]


def test_create_raises_and_is_not_retried(sky):
    source = SessionSource.of(sky.session())
    sky.create_reply = (400, "Missing parameter 'image'")
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")
    with pytest.raises(httpx.HTTPStatusError) as info:
        run(source.create(request))
    assert "Missing parameter" in str(info.value)
    assert len(sky.made("POST", "session")) == 1


def test_create_with_registry_for_this_call_only(sky):
    session = sky.session()
    source = SessionSource.of(session)
    registry = ContainerRegistry(username="robot", secret="SENTINEL-REG-SECRET")
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")
    ids = run(source.create(request, registry=registry))
    assert ids == ["new00001"]
    header = sky.made("POST", "session")[-1].headers.get("x-skaha-registry-auth")
    assert header == registry.header_value()
    run(source.create(request))
    assert "x-skaha-registry-auth" not in sky.made("POST", "session")[-1].headers
    assert source.scrub("secret SENTINEL-REG-SECRET and " + header) == "secret *** and ***"


def test_destroy_and_renew(sky):
    source = SessionSource.of(sky.session())
    assert run(source.renew(["aaa11111"])) == {"aaa11111": True}
    renew = sky.made("POST", "session/aaa11111")[-1]
    assert b"action=renew" in renew.content or renew.url.params.get("action") == "renew"
    assert run(source.destroy(["aaa11111", "nope0000"])) == {"aaa11111": True, "nope0000": False}


def test_scrub_hides_the_token(sky):
    source = SessionSource.of(sky.session())
    assert source.scrub(f"Bearer {TOKEN} was refused") == "Bearer *** was refused"
    assert source.scrub("nothing secret") == "nothing secret"


def test_scrub_hides_the_sessions_registry_secret(sky):
    registry = ContainerRegistry(username="robot", secret="SENTINEL-SESSION-REG")
    source = SessionSource.of(sky.session(registry=registry))
    header = registry.header_value()
    assert source.scrub(f"{TOKEN} SENTINEL-SESSION-REG {header}") == "*** *** ***"


def test_source_repr_has_no_secret(sky):
    assert TOKEN not in repr(SessionSource.of(sky.session()))


class Bridge(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Official canfar speaks httpx2: hand its requests to the fake (an httpx handler)."""

    def __init__(self, handler):
        self.handler = handler

    def _call(self, request: httpx2.Request) -> httpx2.Response:
        reply = self.handler(
            httpx.Request(
                request.method,
                str(request.url),
                headers=request.headers.raw,
                content=request.read(),
            )
        )
        return httpx2.Response(reply.status_code, headers=reply.headers.raw, content=reply.content)

    def handle_request(self, request):
        return self._call(request)

    async def handle_async_request(self, request):
        return self._call(request)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_official_canfar_sessions_work(sky, flavour):
    from canfar.sessions import AsyncSession as OfficialAsync
    from canfar.sessions import Session as OfficialSync

    cls = OfficialSync if flavour == "sync" else OfficialAsync
    session = cls(url=BASE, token=TOKEN, transport=Bridge(sky.handle))
    source = SessionSource.of(session)
    records = run(source.fetch())
    assert {r.id for r in records} == {"aaa11111", "bbb22222"}
    assert run(source.logs("aaa11111")) == {"aaa11111": "hello\n"}
    assert run(source.events("aaa11111"))["aaa11111"][0].reason == "Pulled"
    context = run(source.context())  # canfar has no context(): a direct GET
    assert context.model_dump()
    assert sky.made("GET", "context")
    ids = run(
        source.create(CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless"))
    )
    assert ids == ["new00001"]
    # The form's path: canfar gives only ids, so its adapter numbers them as outcomes, and
    # announces the launch (canfar does not; ours does it itself).
    heard: list[list[str]] = []
    stop = launches.on_launch(lambda launched: heard.append(list(launched)))
    try:
        request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")
        outcomes = run(source.launch_outcomes(request))
    finally:
        stop()
    assert [(o.replica, o.id, o.reconciled, o.unknown) for o in outcomes] == [
        (1, "new00002", False, False)
    ]
    assert heard == [["new00002"]]
    assert run(source.destroy(ids)) == {"new00001": True}
    assert source.scrub(f"x {TOKEN} y") == "x *** y"


def test_each_client_gets_its_adapter(sky):
    from canfar.sessions import Session as OfficialSync

    from canfar_widgets.widgets._adapters import CanfarSessions, OwnSessions

    ours = Session(url=BASE, token=TOKEN, transport=httpx.MockTransport(sky.handle))
    assert isinstance(SessionSource.of(ours).adapter, OwnSessions)
    assert isinstance(SessionSource.of(sky.session()).adapter, OwnSessions)
    official = OfficialSync(url=BASE, token=TOKEN, transport=Bridge(sky.handle))
    assert isinstance(SessionSource.of(official).adapter, CanfarSessions)


# -- CanfarWidget ------------------------------------------------------------------------------------


def test_visibility_messages_drive_the_subscription(sky):
    poller = Poller(lambda: asyncio.sleep(0, result=1), fast=30, slow=30)
    w = Probe(sky.session(), poller=poller)
    assert not w.visible and not w.sub.visible  # no view yet: not visible
    send(w, kind="visibility", visible=True, view="v1")
    send(w, kind="visibility", visible=True, view="v2")
    assert w.sub.visible
    send(w, kind="visibility", visible=False, view="v1")
    assert w.sub.visible  # v2 still shows it
    send(w, kind="visibility", visible=False, view="v2")
    assert not w.sub.visible
    w.close()
    assert w.sub.closed
    assert wait_until(lambda: not poller.running)


def test_handler_errors_show_in_the_widget_scrubbed(sky):
    w = Probe(sky.session())
    send(w, kind="boom")
    assert w.error.startswith("boom failed: RuntimeError: exploded with ***")
    assert TOKEN not in w.error
    send(w, kind="no-such-handler")  # ignored, no error
    send(w, kind="boom")
    w.close()


def test_only_listed_message_kinds_reach_a_handler(sky):
    # A poller callback is no message handler, whatever its name: {kind: "feed"} reaches
    # nothing (by-name dispatch once called _on_feed with the wrong arguments).
    calls: list[Any] = []

    class WithCallback(Probe):
        def _on_feed(self, value: Any, error: Any) -> None:
            calls.append((value, error))

    w = WithCallback(sky.session())
    send(w, kind="feed", rows=[])
    assert calls == [] and w.error == ""
    assert set(WithCallback._message_table) == {"visibility", "boom"}
    send(w, kind="boom")  # inherited from Probe's table
    assert w.error.startswith("boom failed:")
    w.close()


def test_spawn_failure_becomes_error_trait(sky):
    w = Probe(sky.session())

    async def fail():
        raise ValueError("bad thing")

    future = w._spawn(fail(), action="Launch", busy=True)
    with pytest.raises(ValueError):
        future.result(5)
    assert wait_until(lambda: w.error == "Launch failed: ValueError: bad thing")
    assert w.busy is False
    w.close()


def test_a_failure_is_said_by_the_widget_not_on_stderr(sky, capsys, caplog):
    """The widget's own message is enough: no "Probe: Launch failed" red line under the cell
    (logging's last-resort handler prints WARNING records on stderr); INFO keeps a record."""
    w = Probe(sky.session())

    async def fail():
        raise ValueError("bad thing")

    with caplog.at_level(logging.INFO, logger="canfar_widgets.widgets"):
        future = w._spawn(fail(), action="Launch", busy=True)
        with pytest.raises(ValueError):
            future.result(5)
        assert wait_until(lambda: w.error == "Launch failed: ValueError: bad thing")
    w.close()
    records = [r for r in caplog.records if "Launch failed" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "Launch failed" not in capsys.readouterr().err


def test_measure_traffic_counts_updates_and_custom_messages(sky):
    w = Probe(sky.session())
    with measure_traffic(w) as meter:
        w._update(status="hello", busy=True)
        w._update(status="hello")  # unchanged: nothing sent
        w.send({"kind": "patch", "version": 1})
    assert meter.count == 2
    assert meter.updates() == [{"status": "hello", "busy": True}]
    assert meter.custom() == [{"kind": "patch", "version": 1}]
    assert meter.bytes == sum(len(json.dumps(m, separators=(",", ":"))) for m in meter.messages)
    w.close()


def test_describe_error_words():
    request = httpx.Request("GET", BASE)
    assert (
        describe_error(httpx.ConnectError("x", request=request))
        == "cannot reach the platform (ConnectError)"
    )
    assert (
        describe_error(httpx.ReadTimeout("x", request=request))
        == "the platform did not answer in time"
    )

    class Odd(Exception):
        response = httpx2.Response(418)

    assert describe_error(Odd()) == "HTTP 418 from the platform"
    assert describe_error(KeyError()) == "KeyError"


def test_create_passes_replicas_and_gpus(sky):
    source = SessionSource.of(sky.session())
    request = CreateRequest(
        name="job", image="skaha/terminal:1.1.2", kind="headless", replicas=3, cmd="echo"
    )
    ids = run(source.create(request))
    assert len(ids) == 3
    names = sorted(sky.sessions[i]["name"] for i in ids)
    assert names == ["job-1", "job-2", "job-3"]


# -- observers run on the main thread (issue 15, item 22) -------------------------------------------


@pytest.fixture
def main_loop(monkeypatch):
    """A main-thread event loop standing in for the kernel's (what ipykernel runs)."""
    from canfar_widgets import main_thread

    loop = asyncio.new_event_loop()
    monkeypatch.setattr(main_thread, "_queue", main_thread.MainThreadQueue(lambda: loop))
    yield loop
    loop.close()


def _turn(loop, seconds=0.05):
    """Let the main thread's loop run (as the idle kernel does between cells)."""
    loop.run_until_complete(asyncio.sleep(seconds))


def test_runner_changes_reach_observers_on_the_main_thread_in_order(sky, main_loop):
    w = Probe(sky.session())
    seen: list[tuple[str, str]] = []
    w.observe(
        lambda change: seen.append((change["new"], threading.current_thread().name)), "status"
    )

    async def on_runner():
        w._update(status="one")
        w._update(status="two")
        return threading.current_thread().name

    with measure_traffic(w) as meter:
        runner_thread = run(on_runner())
        # The front end has both values already; the observers have not run yet.
        assert meter.updates() == [{"status": "one"}, {"status": "two"}]
        assert seen == []
        _turn(main_loop)
    assert runner_thread != "MainThread"
    assert seen == [("one", "MainThread"), ("two", "MainThread")]
    w.close()


def test_a_slow_observer_does_not_hold_the_runner(sky, main_loop):
    w, other = Probe(sky.session()), Probe(sky.session())
    w.observe(lambda change: time.sleep(1.0), "status")

    async def on_runner():
        w._update(status="slow observer")
        other._update(status="next widget")

    with measure_traffic(other) as meter:
        run(on_runner())  # returns without running the slow observer at all
        assert meter.updates() == [{"status": "next widget"}]
    assert other.status == "next widget"
    _turn(main_loop)
    w.close()
    other.close()


def test_an_observer_may_make_sync_session_calls(sky, main_loop):
    w = Probe(sky.session())
    session = Session(url=BASE, token=TOKEN, transport=httpx.MockTransport(sky.handle))
    found: list[Any] = []
    w.observe(lambda change: found.append(session.fetch()), "status")
    # On the runner this fetch would raise "would deadlock"; on the main thread it works.
    get_runner().call_soon(lambda: w._update(status="launched"))
    assert wait_until(lambda: w.status == "launched")
    _turn(main_loop, 0.2)
    assert found and {r["id"] for r in found[0]} == {"aaa11111", "bbb22222"}
    w.close()


def test_main_thread_changes_notify_at_once_and_after_queued_ones(sky, main_loop):
    w = Probe(sky.session())
    seen: list[str] = []
    w.observe(lambda change: seen.append(change["new"]), "status")
    get_runner().call_soon(lambda: w._update(status="from runner"))
    assert wait_until(lambda: w.status == "from runner")
    w._update(status="from main")  # runs the queued observer first, then its own
    assert seen == ["from runner", "from main"]
    w.close()


def test_without_a_kernel_observers_run_where_the_change_is_made(sky):
    w = Probe(sky.session())
    threads: list[str] = []
    w.observe(lambda change: threads.append(threading.current_thread().name), "status")
    get_runner().call_soon(lambda: w._update(status="x"))
    assert wait_until(lambda: threads)
    assert threads[0] != "MainThread"  # scripts and tests: as before
    w.close()


# -- the saved snapshot follows the state (issue 15, item 19) ---------------------------------------


class Snap(Probe):
    snapshot_interval = 0.2

    def _static_html(self) -> str:
        return f"<p>status: {self.status}</p>"


@pytest.fixture
def shown(monkeypatch, main_loop):
    """What display() and update_display() published: [(kind, data, display_id)]."""
    import IPython.display

    from canfar_widgets.widgets import _base

    out: list[tuple[str, dict[str, Any], str | None]] = []
    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda data, metadata=None, raw=False, display_id=None: out.append(
            ("display", data, display_id)
        ),
    )
    monkeypatch.setattr(
        _base, "_update_display", lambda data, display_id: out.append(("update", data, display_id))
    )
    return out


def test_in_a_kernel_the_snapshot_is_its_own_output_that_follows_the_state(sky, shown):
    w = Snap(sky.session())
    w._update(status="first")
    w._ipython_display_()
    (_, view, none_id), (_, snap, display_id) = shown
    assert "application/vnd.jupyter.widget-view+json" in view and "text/html" not in view
    assert view["text/plain"] == ""  # the state in words goes with the snapshot, which follows it
    assert none_id is None and display_id
    assert snap["text/plain"] == repr(w)
    assert f'data-canfar-snapshot="{w._snapshot_id}"' in snap["text/html"]
    assert "status: first" in snap["text/html"]

    async def changes():
        for n in range(20):
            w._update(status=f"change {n}")
            await asyncio.sleep(0.02)

    run(changes())
    assert wait_until(
        lambda: shown[-1][0] == "update" and "status: change 19" in shown[-1][1]["text/html"]
    )
    assert shown[-1][1]["text/plain"] == repr(w)
    updates = [s for s in shown if s[0] == "update"]
    assert all(u[2] == display_id for u in updates)
    assert len(updates) < 20  # merged: at most one per snapshot_interval, the last one current
    w.close()


def test_a_widget_never_displayed_publishes_no_snapshot_updates(sky, shown):
    w = Snap(sky.session())
    run(asyncio.sleep(0))
    w._update(status="changed")
    time.sleep(0.4)
    assert shown == []
    w.close()


def test_outside_a_kernel_display_is_the_whole_bundle(sky, monkeypatch):
    import IPython.display

    out: list[dict[str, Any]] = []
    monkeypatch.setattr(
        IPython.display, "display", lambda data, metadata=None, raw=False: out.append(data)
    )
    w = Snap(sky.session())
    w._ipython_display_()
    assert (
        len(out) == 1
        and "text/html" in out[0]
        and "application/vnd.jupyter.widget-view+json" in out[0]
    )
    w.close()


def test_a_message_with_an_ack_id_is_answered_before_its_handler_runs(sky):
    w = Probe(sky.session())
    with measure_traffic(w) as meter:
        send(w, kind="boom", ack="ack-1")  # the handler fails; the click still arrived
        send(w, kind="visibility", visible=True, view="v")  # no ack asked: none sent
    assert meter.custom() == [{"kind": "ack", "ack": "ack-1"}]
    assert "exploded" in w.error
    w.close()


def test_every_entry_is_wrapped_to_hide_its_snapshot():
    from canfar_widgets.widgets._frontend import frontend_dir, load_esm

    for entry in sorted(p.stem for p in frontend_dir().glob("*.js")):
        source = load_esm(entry)
        assert source.rstrip().endswith("export default __withSnapshot(__canfar_view);"), entry
        assert source.count("export default") == 1, entry
