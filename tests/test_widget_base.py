"""The widget foundation: CanfarWidget (messages, visibility, errors, traffic) and Backend
(any session object -> async calls on the runner, one per session, secrets scrubbed)."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from typing import Any

import httpx
import httpx2
import pytest
from widget_fakes import BASE, TOKEN, FakeSkaha, send, wait_until

from canfar_widgets.models import ContainerRegistry, CreateRequest, Event, SessionRecord
from canfar_widgets.runner import get_runner
from canfar_widgets.sessions import Session
from canfar_widgets.widgets._backend import Backend
from canfar_widgets.widgets._base import CanfarWidget, describe_error, measure_traffic
from canfar_widgets.widgets.feed import Poller, SessionFeed

pytestmark = pytest.mark.usefixtures("fresh_widgets")


@pytest.fixture
def sky() -> FakeSkaha:
    sky = FakeSkaha()
    sky.add("aaa11111", status="Running", kind="notebook", log="hello\n",
            events="TYPE     REASON   MESSAGE\nNormal   Pulled   pulled image\n")
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


def run(coro):
    return get_runner().run(coro, timeout=10)


# -- Backend -----------------------------------------------------------------------------------


def test_one_backend_per_session_object(sky):
    session = sky.session()
    a, b = Backend.of(session), Backend.of(session)
    assert a is b and a.feed is b.feed
    assert isinstance(a.feed, SessionFeed)
    assert Backend.of(a) is a
    assert Backend.of(sky.session()) is not a


def test_backend_cache_is_weak(sky):
    session = sky.session()
    backend = Backend.of(session)
    key = id(session)
    del backend
    gc.collect()
    assert key not in Backend._cache or Backend._cache[key]() is None


def test_session_none_builds_session_from_environment(monkeypatch, respx_mock):
    monkeypatch.setenv("CANFAR_URL", BASE)
    monkeypatch.setenv("CANFAR_TOKEN", TOKEN)
    respx_mock.get(BASE + "session").mock(return_value=httpx.Response(200, json=[{"id": "x1", "status": "Running"}]))
    backend = Backend.of(None)
    assert Backend.of() is backend
    records = run(backend.fetch())
    assert [r.id for r in records] == ["x1"]
    assert respx_mock.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


def test_fetch_returns_records_and_reuses_unchanged_ones(sky):
    backend = Backend.of(sky.session())
    first = run(backend.fetch())
    assert all(isinstance(r, SessionRecord) for r in first)
    assert {r.id for r in first} == {"aaa11111", "bbb22222"}
    sky.sessions["bbb22222"]["status"] = "Running"
    second = {r.id: r for r in run(backend.fetch())}
    before = {r.id: r for r in first}
    assert second["aaa11111"] is before["aaa11111"]  # unchanged: same object
    assert second["bbb22222"] is not before["bbb22222"]
    assert second["bbb22222"].state == "Running"


def test_fetch_filters_go_to_the_server(sky):
    backend = Backend.of(sky.session())
    run(backend.fetch(kind="headless", status="Pending"))
    params = dict(sky.made("GET", "session")[-1].url.params)
    assert params == {"type": "headless", "status": "Pending"}


def test_calls_run_on_the_runner_thread_even_when_awaited_elsewhere(sky):
    backend = Backend.of(Session(url=BASE, token=TOKEN, transport=httpx.MockTransport(sky.handle)))
    threads: list[str] = []
    sky.on_request = lambda request: threads.append(threading.current_thread().name)
    records = asyncio.run(backend.info("aaa11111"))  # another loop entirely
    assert [r.id for r in records] == ["aaa11111"]
    assert threads == [get_runner().name]


def test_logs_events_stats_context_images(sky):
    backend = Backend.of(sky.session())
    assert run(backend.logs(["aaa11111"])) == {"aaa11111": "hello\n"}
    events = run(backend.events("aaa11111"))
    assert list(events) == ["aaa11111"]
    assert all(isinstance(e, Event) for e in events["aaa11111"])
    assert events["aaa11111"][0].reason == "Pulled"
    stats = run(backend.stats())
    assert stats.model_dump()  # parsed
    context = run(backend.context())
    assert context.model_dump()
    images = run(backend.images("carta"))
    assert [i.id for i in images] == ["images.canfar.net/skaha/carta:4.0"]


def test_create_raises_and_is_not_retried(sky):
    backend = Backend.of(sky.session())
    sky.create_reply = (400, "Missing parameter 'image'")
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")
    with pytest.raises(httpx.HTTPStatusError) as info:
        run(backend.create(request))
    assert "Missing parameter" in str(info.value)
    assert len(sky.made("POST", "session")) == 1


def test_create_with_registry_for_this_call_only(sky):
    session = sky.session()
    backend = Backend.of(session)
    registry = ContainerRegistry(username="robot", secret="SENTINEL-REG-SECRET")
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")
    ids = run(backend.create(request, registry=registry))
    assert ids == ["new00001"]
    header = sky.made("POST", "session")[-1].headers.get("x-skaha-registry-auth")
    assert header == registry.header_value()
    run(backend.create(request))
    assert "x-skaha-registry-auth" not in sky.made("POST", "session")[-1].headers
    assert backend.scrub("secret SENTINEL-REG-SECRET and " + header) == "secret *** and ***"


def test_destroy_and_renew(sky):
    backend = Backend.of(sky.session())
    assert run(backend.renew(["aaa11111"])) == {"aaa11111": True}
    renew = sky.made("POST", "session/aaa11111")[-1]
    assert b"action=renew" in renew.content or renew.url.params.get("action") == "renew"
    assert run(backend.destroy(["aaa11111", "nope0000"])) == {"aaa11111": True, "nope0000": False}


def test_scrub_hides_the_token(sky):
    backend = Backend.of(sky.session())
    assert backend.scrub(f"Bearer {TOKEN} was refused") == "Bearer *** was refused"
    assert backend.scrub("nothing secret") == "nothing secret"


def test_backend_repr_has_no_secret(sky):
    assert TOKEN not in repr(Backend.of(sky.session()))


class Bridge(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Official canfar speaks httpx2: hand its requests to the fake (an httpx handler)."""

    def __init__(self, handler):
        self.handler = handler

    def _call(self, request: httpx2.Request) -> httpx2.Response:
        reply = self.handler(httpx.Request(request.method, str(request.url),
                                           headers=request.headers.raw, content=request.read()))
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
    backend = Backend.of(session)
    records = run(backend.fetch())
    assert {r.id for r in records} == {"aaa11111", "bbb22222"}
    assert run(backend.logs("aaa11111")) == {"aaa11111": "hello\n"}
    assert run(backend.events("aaa11111"))["aaa11111"][0].reason == "Pulled"
    context = run(backend.context())  # canfar has no context(): a direct GET
    assert context.model_dump()
    assert sky.made("GET", "context")
    ids = run(backend.create(CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless")))
    assert ids == ["new00001"]
    assert run(backend.destroy(ids)) == {"new00001": True}
    assert backend.scrub(f"x {TOKEN} y") == "x *** y"


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
    assert describe_error(httpx.ConnectError("x", request=request)) == "cannot reach the platform (ConnectError)"
    assert describe_error(httpx.ReadTimeout("x", request=request)) == "the platform did not answer in time"

    class Odd(Exception):
        response = httpx2.Response(418)

    assert describe_error(Odd()) == "HTTP 418 from the platform"
    assert describe_error(KeyError()) == "KeyError"


def test_create_passes_replicas_and_gpus(sky):
    backend = Backend.of(sky.session())
    request = CreateRequest(name="job", image="skaha/terminal:1.1.2", kind="headless", replicas=3, cmd="echo")
    ids = run(backend.create(request))
    assert len(ids) == 3
    names = sorted(sky.sessions[i]["name"] for i in ids)
    assert names == ["job-1", "job-2", "job-3"]
