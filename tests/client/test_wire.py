"""The wire layer: one AsyncClient on the runner loop, retries, typed errors, safe logging."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import warnings

import httpx
import pytest
from canfar.utils.build import create_parameters as official_create_parameters
from stub_skaha import StubSkaha
from wire_support import BASE, REGISTRY_SECRET, REGISTRY_USER, TOKEN, form

from canfar_widgets.errors import (
    BadRequest,
    LaunchWarning,
    NotFound,
    ServerError,
    ServiceUnavailable,
    TooManyRequests,
)
from canfar_widgets.models import ContainerRegistry, CreateRequest
from canfar_widgets.runner import get_runner
from canfar_widgets.sessions import Session
from canfar_widgets.settings import resolve_settings
from canfar_widgets.transports import KeepAliveTransport, ShardedTransport
from canfar_widgets.wire import DEFAULT_RETRY, Retry, Wire, create_form

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")

REGISTRY_HEADER = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_SECRET}".encode()).decode()


def make_wire(**kwargs) -> Wire:
    settings = resolve_settings(
        url=kwargs.pop("url", BASE),
        token=kwargs.pop("token", TOKEN),
        registry=kwargs.pop(
            "registry", ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
        ),
        concurrency=kwargs.pop("concurrency", None),
    )
    return Wire(settings, **kwargs)


@pytest.fixture
def wire():
    w = make_wire()
    yield w
    w.close()


def run(coro):
    return get_runner().run(coro)


# -- the client lives on the runner loop ------------------------------------------------------


def test_client_is_created_lazily_on_the_runner_loop(wire, respx_mock):
    respx_mock.get(BASE + "session").respond(json=[])
    assert wire._client is None  # construction opens nothing

    async def from_another_loop():
        return await wire.get("session")

    response = asyncio.run(from_another_loop())
    assert response.json() == []
    assert wire._loop is get_runner().loop
    assert wire._client is not None


@pytest.mark.parametrize("concurrency", [1, 7, 32])
def test_connections_are_limited_to_concurrency(respx_mock, concurrency):
    respx_mock.get(BASE + "session").respond(json=[])
    w = make_wire(concurrency=concurrency)
    try:
        run(w.get("session"))
        transport = w._client._transport
        assert isinstance(transport, KeepAliveTransport)
        assert transport._limit == concurrency
    finally:
        w.close()


@pytest.mark.parametrize(("concurrency", "pools"), [(7, [7]), (32, [8, 8, 8, 8]), (20, [7, 7, 7])])
def test_sharded_transport_splits_connections_into_small_pools(respx_mock, concurrency, pools):
    respx_mock.get(BASE + "session").respond(json=[])
    transport = ShardedTransport(concurrency)

    async def main():
        async with httpx.AsyncClient(transport=transport) as client:
            (await client.get(BASE + "session")).raise_for_status()

    asyncio.run(main())
    assert [p._pool._max_connections for p in transport._pools] == pools
    assert transport._busy == [0] * len(pools)  # released once the body was read


def test_sharded_transport_spreads_requests_and_releases_them():
    """Against a real loopback server: 24 requests in flight spread 8/8/8 over 3 pools."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    gate = threading.Event()
    in_flight_peak: list[list[int]] = []

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            gate.wait(5)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    async def main():
        transport = ShardedTransport(24)
        async with httpx.AsyncClient(transport=transport) as client:
            tasks = [asyncio.create_task(client.get(url)) for _ in range(24)]
            while sum(transport._busy) < 24:
                await asyncio.sleep(0.01)
            in_flight_peak.append(list(transport._busy))
            gate.set()
            answers = await asyncio.gather(*tasks)
            assert all(a.text == "ok" for a in answers)
            assert transport._busy == [0, 0, 0]

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        server.shutdown()
        server.server_close()
    assert in_flight_peak == [[8, 8, 8]]


def test_close_then_reopen(wire, respx_mock):
    respx_mock.get(BASE + "session").respond(json=[])
    run(wire.get("session"))
    first = wire._client
    wire.close()
    assert wire._client is None and first.is_closed
    run(wire.get("session"))  # a new client, as canfar re-creates after close
    assert wire._client is not None and wire._client is not first


# -- requests ------------------------------------------------------------------------------------


def test_get_delete_and_post_requests(wire, respx_mock):
    get = respx_mock.get(BASE + "session", params={"type": "headless"}).respond(json=[1])
    delete = respx_mock.delete(BASE + "session/abc").respond(200)
    post = respx_mock.post(BASE + "session/abc").respond(200)

    assert run(wire.get("session", params={"type": "headless"})).json() == [1]
    run(wire.delete("session/abc"))
    run(wire.post("session/abc", [("action", "renew")]))

    for route in (get, delete, post):
        request = route.calls.last.request
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-skaha-registry-auth"] == REGISTRY_HEADER
        assert request.headers["accept"] == "application/json"
    request = post.calls.last.request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.url.query == b""
    assert form(request) == [("action", "renew")]


def test_post_is_a_form_body_with_order_and_repeats_kept(wire, respx_mock):
    route = respx_mock.post(BASE + "session").respond(text="id\n")
    fields = [("name", "a b"), ("env", "X=1&y"), ("env", "REPLICA_ID=1"), ("cmd", "ü")]
    run(wire.post("session", fields))
    request = route.calls.last.request
    assert request.url.query == b""  # nothing in the URL, hence nothing in URL logs
    assert form(request) == fields
    assert request.content == b"name=a+b&env=X%3D1%26y&env=REPLICA_ID%3D1&cmd=%C3%BC"


def test_post_extra_headers(wire, respx_mock):
    route = respx_mock.post(BASE + "session").respond(text="id\n")
    run(wire.post("session", {"name": "x"}, headers={"X-Extra": "1"}))
    assert route.calls.last.request.headers["x-extra"] == "1"


def test_create_form_matches_the_official_client():
    cases = [
        dict(name="job", image="skaha/terminal:1.1.2"),
        dict(
            name="job",
            image="images.canfar.net/skaha/terminal:1.1.2",
            cores=2,
            ram=8,
            gpu=1,
            cmd="python",
            args="-c 'print(1)'",
            env={"A": 1, "REPLICA_ID": "x", "B": "two words"},
            replicas=3,
        ),
        dict(name="nb", image="skaha/astroml", kind="notebook", cores=4),
        dict(name="d", image="skaha/desktop:1.0", kind="desktop"),
    ]
    for case in cases:
        official = official_create_parameters(**case)
        ours = CreateRequest(**case)
        total = ours.replicas
        assert len(official) == total
        for replica in range(1, total + 1):
            expected = [(k, str(v)) for k, v in official[replica - 1]]
            assert create_form(ours, replica, total) == expected


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "text"),
    [
        (400, BadRequest, "Missing parameter 'image'"),
        (404, NotFound, "session abc not found"),
        (500, ServerError, "unexpected exception: java.lang.NullPointerException"),
    ],
)
def test_error_responses_are_typed_with_server_text(wire, respx_mock, slept, status, cls, text):
    route = respx_mock.get(BASE + "session/abc").respond(status, text=text + "\n")
    with pytest.raises(cls) as info:
        run(wire.get("session/abc"))
    assert info.value.status_code == status
    assert info.value.message == text
    assert isinstance(info.value, httpx.HTTPStatusError)  # canfar-style except clauses still work
    assert route.call_count == 1  # 400/404/500 are not transient: no retry
    assert slept == []


# -- retries -------------------------------------------------------------------------------------------


def test_get_retries_503_honouring_retry_after(wire, respx_mock, slept):
    route = respx_mock.get(BASE + "session").mock(
        side_effect=[
            httpx.Response(
                503, text="temporarily unavailable: null\n", headers={"Retry-After": "3"}
            ),
            httpx.Response(502),
            httpx.Response(200, json=["ok"]),
        ]
    )
    assert run(wire.get("session")).json() == ["ok"]
    assert route.call_count == 3
    assert slept[0] == 3.0  # the server's Retry-After
    assert 0 < slept[1] <= DEFAULT_RETRY.backoff * 2  # backoff with jitter


def test_a_retry_after_longer_than_the_cap_is_not_anticipated(wire, respx_mock, slept):
    # Retrying after max_retry_after would ask again before the server said to: raise instead.
    route = respx_mock.get(BASE + "session").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=[]),
        ]
    )
    with pytest.raises(ServiceUnavailable) as info:
        run(wire.get("session"))
    assert info.value.retry_after == 3600
    assert route.call_count == 1
    assert slept == []


def test_retries_are_bounded(wire, respx_mock, slept):
    route = respx_mock.get(BASE + "session").respond(503, text="temporarily unavailable: null")
    with pytest.raises(ServiceUnavailable) as info:
        run(wire.get("session"))
    assert route.call_count == DEFAULT_RETRY.attempts
    assert len(slept) == DEFAULT_RETRY.attempts - 1
    assert info.value.message == "temporarily unavailable: null"


def test_total_wait_is_bounded(respx_mock, slept):
    route = respx_mock.get(BASE + "session").respond(503, headers={"Retry-After": "8"})
    w = make_wire(retry=Retry(attempts=10, max_retry_after=8, budget=20))
    try:
        with pytest.raises(ServiceUnavailable):
            run(w.get("session"))
    finally:
        w.close()
    assert slept == [8, 8]  # a third 8 s wait would pass the 20 s budget
    assert route.call_count == 3


@pytest.mark.parametrize(
    "error", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectTimeout]
)
def test_delete_retries_connection_failures(wire, respx_mock, slept, error):
    route = respx_mock.delete(BASE + "session/abc").mock(
        side_effect=[error("boom"), httpx.Response(200)]
    )
    assert run(wire.delete("session/abc")).status_code == 200
    assert route.call_count == 2 and len(slept) == 1


def test_read_timeouts_are_not_retried(wire, respx_mock, slept):
    route = respx_mock.get(BASE + "session").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(httpx.ReadTimeout):
        run(wire.get("session"))
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(502),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("gone"),
        httpx.WriteTimeout("slow"),
    ],
)
def test_post_is_never_retried_once_it_may_have_been_received(wire, respx_mock, slept, failure):
    # (issue 11: a POST that provably never left -- connect refused/timeout -- is retried;
    # see the next test. Everything after the request may have reached the server is not.)
    route = respx_mock.post(BASE + "session").mock(
        side_effect=[failure, httpx.Response(200, text="x")]
    )
    with pytest.raises((ServiceUnavailable, ServerError, httpx.TransportError)):
        run(wire.post("session", [("name", "x")]))
    assert route.call_count == 1
    assert slept == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.Response(429, headers={"Retry-After": "2"}),
    ],
)
def test_post_is_retried_when_it_provably_was_not_received(wire, respx_mock, slept, failure):
    route = respx_mock.post(BASE + "session").mock(
        side_effect=[failure, httpx.Response(200, text="x")]
    )
    assert run(wire.post("session", [("name", "x")])).text == "x"
    assert route.call_count == 2 and len(slept) == 1
    if isinstance(failure, httpx.Response):
        assert slept == [2.0]  # the server's Retry-After


def test_a_long_429_is_raised_at_once_saying_when_to_come_back(wire, respx_mock, slept):
    route = respx_mock.post(BASE + "session").respond(
        429, text="slow down", headers={"Retry-After": "120"}
    )
    with pytest.raises(TooManyRequests) as info:
        run(wire.post("session", [("name", "x")]))
    assert route.call_count == 1 and slept == []
    assert info.value.retry_after == 120
    assert any("wait 120 s" in note for note in info.value.__notes__)


def test_backoff_grows_with_jitter():
    policy = Retry(backoff=1.0, max_backoff=4.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = {policy.delay(attempt, None) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


# -- transports --------------------------------------------------------------------------------------


def test_async_transport_is_borrowed_not_closed():
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(threading.current_thread().name)
        return httpx.Response(200, json={"ok": True})

    transport = httpx.MockTransport(handler)
    w = make_wire(transport=transport)
    assert run(w.get("context")).json() == {"ok": True}
    w.close()
    assert seen == ["canfar-widgets-loop"]
    w2 = make_wire(transport=transport)  # still usable: closing the wire left it open
    assert run(w2.get("context")).status_code == 200
    w2.close()


def test_a_sync_only_transport_is_refused_with_a_clear_message():
    # (The worker-thread adapter for sync transports served only this test; it was dropped
    # with the move to canfar_widgets.transports. httpx.MockTransport is both kinds.)
    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text="new-id\n")

    with pytest.raises(TypeError, match=r"async httpx transport.*SyncOnly"):
        make_wire(transport=SyncOnly())


# -- nothing secret in logs ------------------------------------------------------------------------------

SECRETS = (TOKEN, REGISTRY_SECRET, REGISTRY_HEADER, "SENTINEL-ENV-VALUE")


def _assert_no_secrets(caplog) -> None:
    assert caplog.records, "expected some log records at DEBUG"
    for item in caplog.records:
        text = item.getMessage() + repr(item.args)
        for secret in SECRETS:
            assert secret not in text, (item.name, text)


def _exercise(session: Session) -> None:
    session.fetch(kind="headless")
    session.info(["abc12345", "nope0000"])  # one 404, logged
    with warnings.catch_warnings(record=True) as warned:  # a short create warns: no secrets either
        warnings.simplefilter("always")
        session.create(
            "job", image="skaha/terminal:1.1.2", env={"K": "SENTINEL-ENV-VALUE"}, replicas=2
        )
    assert all(issubclass(w.category, LaunchWarning) for w in warned)
    for secret in SECRETS:
        assert all(secret not in str(w.message) for w in warned)
    session.destroy("abc12345")


def test_no_secrets_in_logs_with_respx(respx_mock, caplog, slept):
    respx_mock.get(BASE + "session").respond(json=[])
    respx_mock.get(BASE + "session/abc12345").respond(json={"id": "abc12345"})
    respx_mock.get(BASE + "session/nope0000").respond(404, text="session nope0000 not found")
    respx_mock.post(BASE + "session").mock(
        side_effect=[httpx.Response(200, text="a\n"), httpx.Response(503)]
    )
    respx_mock.delete(BASE + "session/abc12345").mock(
        side_effect=[httpx.Response(503), httpx.Response(200)]
    )
    registry = ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    with (
        caplog.at_level(logging.DEBUG),
        Session(url=BASE, token=TOKEN, registry=registry) as session,
    ):
        _exercise(session)
        assert TOKEN not in repr(session) and REGISTRY_SECRET not in repr(session)
    _assert_no_secrets(caplog)


def test_no_secrets_in_httpx_logs_on_a_real_socket(caplog):
    """respx replaces the layer httpcore logs from, so also go through a real connection."""
    registry = ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    with StubSkaha() as server, caplog.at_level(logging.DEBUG):
        with Session(url=server.url, token=TOKEN, registry=registry) as session:
            _exercise(session)
        sent = server.seen
    assert {"httpx", "httpcore.connection", "httpcore.http11"} <= {r.name for r in caplog.records}
    _assert_no_secrets(caplog)
    # ... while the secrets did reach the server, in headers and the form body only
    create = [s for s in sent if s.method == "POST"]
    assert create and all(s.query == [] for s in create)
    assert b"SENTINEL-ENV-VALUE" in create[0].body
    assert create[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert create[0].headers["x-skaha-registry-auth"] == REGISTRY_HEADER


# -- lifecycle across garbage collection and runner restarts -----------------------------------------------


def test_a_dropped_wire_closes_its_client(respx_mock):
    import gc
    import time

    respx_mock.get(BASE + "session").respond(json=[])
    w = make_wire()
    run(w.get("session"))
    client = w._client
    del w
    gc.collect()
    deadline = time.monotonic() + 5
    while not client.is_closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.is_closed


def test_a_wire_outlives_a_runner_restart(monkeypatch, respx_mock):
    from canfar_widgets import runner as runner_module

    monkeypatch.setattr(runner_module, "_shared", None)  # a private shared runner for this test
    respx_mock.get(BASE + "session").respond(json=[])
    w = make_wire()
    run(w.get("session"))
    first = w._client
    get_runner().shutdown()  # closes the open clients it served
    assert first.is_closed
    run(w.get("session"))  # a new runner and a new client
    assert w._client is not None and w._client is not first
    assert w._loop is get_runner().loop
    w.close()
    get_runner().shutdown()
