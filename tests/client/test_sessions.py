"""Session and AsyncSession: every method's request and result, both flavours, one server.

Most tests take the ``api`` fixture, which runs once with ``Session`` and once with
``AsyncSession`` (each async call in its own ``asyncio.run`` loop) against the same respx
routes: identical requests and results are the point.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import warnings
import webbrowser

import httpx
import pytest
from wire_support import BASE, REGISTRY_SECRET, REGISTRY_USER, TOKEN, form, record

from canfar_widgets import sessions as sessions_module
from canfar_widgets.errors import (
    BadRequest,
    LaunchWarning,
    NotFound,
    ServiceUnavailable,
    SessionRequestError,
    SessionWarning,
)
from canfar_widgets.models import ContainerRegistry, Context, CreateRequest, Image
from canfar_widgets.sessions import AsyncSession, Session

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")

IMAGE = "images.canfar.net/skaha/terminal:1.1.2"


def _assert_auth(request: httpx.Request, registry: bool = False) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-skaha-authentication-type"] == "RUNTIME-TOKEN"
    if registry:
        expected = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_SECRET}".encode()).decode()
        assert request.headers["x-skaha-registry-auth"] == expected
    else:
        assert "x-skaha-registry-auth" not in request.headers


# -- fetch / stats -------------------------------------------------------------------------------


def test_fetch(api, respx_mock):
    rows = [record("a1"), record("b2", status="Pending")]
    route = respx_mock.get(BASE + "session").respond(json=rows)
    assert api.fetch() == rows
    assert api.fetch(kind="notebook", status="Running") == rows
    first, second = (call.request for call in route.calls)
    assert first.url.query == b""
    assert list(second.url.params.multi_items()) == [("type", "notebook"), ("status", "Running")]
    _assert_auth(second)


@pytest.mark.parametrize(
    ("word", "sent"),
    [
        ("Succeeded", "Completed"),
        ("Error", "Failed"),
        ("Completed", "Completed"),
        ("Terminating", "Terminating"),
    ],
)
def test_fetch_status_words_map_to_the_server_words(api, respx_mock, word, sent):
    route = respx_mock.get(BASE + "session").respond(json=[])
    api.fetch(status=word)
    assert route.calls.last.request.url.params["status"] == sent


@pytest.mark.parametrize("kwargs", [{"kind": "laptop"}, {"status": "Sleeping"}, {"kind": 3}])
def test_fetch_rejects_bad_literals_before_any_request(api, respx_mock, kwargs):
    with pytest.raises(ValueError):
        api.fetch(**kwargs)
    assert respx_mock.calls.call_count == 0


def test_fetch_and_stats_always_raise(make_api, respx_mock, slept):
    api = make_api(errors="ignore")
    respx_mock.get(BASE + "session", params={"view": "stats"}).respond(
        503, text="temporarily unavailable: null\n", headers={"Retry-After": "30"}
    )
    respx_mock.get(BASE + "session").respond(403, text="Not authorized to use the skaha system")
    with pytest.raises(ServiceUnavailable) as info:
        api.stats()
    assert info.value.status_code == 503 and info.value.retry_after == 30
    with pytest.raises(httpx.HTTPStatusError, match="Not authorized to use the skaha system"):
        api.fetch()


def test_stats(api, respx_mock):
    stats = {
        "cores": {"requestedCPUCores": 12.5, "cpuCoresAvailable": 64.0},
        "ram": {"requestedRAM": "137.439G", "ramAvailable": "549.756G"},
    }
    route = respx_mock.get(BASE + "session", params={"view": "stats"}).respond(json=stats)
    assert api.stats() == stats
    assert list(route.calls.last.request.url.params.multi_items()) == [("view", "stats")]


# -- info / logs / events ----------------------------------------------------------------------------


def test_info(api, respx_mock):
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    route = respx_mock.get(BASE + "session/b2").respond(json=record("b2"))
    assert api.info("a1") == [record("a1")]
    assert api.info(["b2", "a1"]) == [record("b2"), record("a1")]  # input order
    assert route.calls.last.request.url.query == b""
    _assert_auth(route.calls.last.request)


def test_info_partial_failure_is_ignored_and_logged(api, respx_mock, caplog):
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    respx_mock.get(BASE + "session/zz").respond(404, text="session zz not found\n")
    respx_mock.get(BASE + "session/odd").respond(json=["not", "a", "record"])
    # INFO, not WARNING: Python's last-resort handler writes WARNING records to stderr, a red
    # line in a notebook cell; the person is told through a SessionWarning instead.
    with (
        caplog.at_level(logging.INFO, logger="canfar_widgets.sessions"),
        pytest.warns(
            SessionWarning,
            match=r"info left out 2 sessions: zz \(not found\), odd \(UnexpectedAnswer\)",
        ),
    ):
        assert api.info(["zz", "a1", "odd"]) == [record("a1")]
    messages = [r.getMessage() for r in caplog.records if r.name == "canfar_widgets.sessions"]
    assert "info failed for zz (NotFound 404)" in messages
    assert any(m.startswith("info failed for odd") for m in messages)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("method", ["info", "logs", "events", "destroy", "renew"])
def test_a_missing_id_warns_once_at_the_callers_line_not_on_stderr(method, respx_mock, capsys):
    """What a notebook cell shows for ``Session().info("nosuchid")``: one SessionWarning
    naming this file (so Jupyter's default filter shows it once per call site), no log line."""
    respx_mock.route(url__startswith=BASE + "session/nosuchid").respond(404, text="not found")
    with Session(url=BASE, token=TOKEN) as session, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):  # one call site, called three times: shown once
            getattr(session, method)("nosuchid", errors="ignore")
    assert [str(w.message) for w in caught] == [
        f"{method} left out 1 session: nosuchid (not found)"
    ]
    assert caught[0].category is SessionWarning
    assert caught[0].filename == __file__
    assert capsys.readouterr().err == ""  # logging's last-resort handler wrote nothing


async def test_a_missing_id_warns_at_the_awaiting_line(respx_mock):
    respx_mock.get(BASE + "session/nosuchid").respond(404, text="not found")
    async with AsyncSession(url=BASE, token=TOKEN) as session:
        with pytest.warns(SessionWarning, match="info left out 1 session: nosuchid") as caught:
            assert await session.info("nosuchid") == []
    assert caught[0].filename == __file__


def test_info_raise_policy_raises_the_first_failure_after_all_requests(make_api, respx_mock):
    api = make_api(errors="raise")
    a1 = respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    respx_mock.get(BASE + "session/x1").respond(404, text="session x1 not found\n")
    respx_mock.get(BASE + "session/x2").respond(400, text="bad\n")
    with pytest.raises(NotFound) as info:
        api.info(["x1", "a1", "x2"])
    assert info.value.message == "session x1 not found" and info.value.status_code == 404
    assert a1.call_count == 1  # every request ran before the error was raised
    assert any("x2 (BadRequest 400)" in note for note in getattr(info.value, "__notes__", []))
    # ... and it is canfar's SessionRequestError too: partial results, failures by id
    assert isinstance(info.value, SessionRequestError) and info.value.operation == "info"
    assert info.value.results == [record("a1")]
    assert list(info.value.errors) == ["x1", "x2"]
    assert isinstance(info.value.errors["x2"], BadRequest)
    # the per-call policy beats the client's
    assert api.info(["x1", "a1"], errors="ignore") == [record("a1")]


def test_logs(api, respx_mock):
    route = respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(
        text="line 1\nline 2\n"
    )
    respx_mock.get(BASE + "session/b2", params={"view": "logs"}).respond(text="")
    assert api.logs("a1") == {"a1": "line 1\nline 2\n"}
    assert api.logs(["b2", "a1"]) == {"b2": "", "a1": "line 1\nline 2\n"}
    assert list(route.calls.last.request.url.params.multi_items()) == [("view", "logs")]


def test_events(api, respx_mock):
    table = "TYPE     REASON      MESSAGE\nNormal   Scheduled   ok\n"
    route = respx_mock.get(BASE + "session/a1", params={"view": "events"}).respond(text=table)
    respx_mock.get(BASE + "session/zz", params={"view": "events"}).respond(
        404, text="session zz not found."
    )
    assert api.events("a1") == [{"a1": table}]
    assert api.events(["zz", "a1"]) == [{"a1": table}]
    assert list(route.calls.last.request.url.params.multi_items()) == [("view", "events")]


@pytest.mark.parametrize("method", ["logs", "events"])
def test_verbose_prints_and_returns_none(api, respx_mock, capsys, method, monkeypatch):
    respx_mock.get(BASE + "session/a1", params={"view": method}).respond(text="hello from a1\n")
    respx_mock.get(BASE + "session/b2", params={"view": method}).respond(text="hello from b2\n")
    assert getattr(api, method)(["a1", "b2"], verbose=True) is None
    assert capsys.readouterr().out == (
        "── Session a1 ──\nhello from a1\n── Session b2 ──\nhello from b2\n"
    )
    monkeypatch.setattr(sessions_module, "_in_kernel", lambda: True)  # coloured in Jupyter
    getattr(api, method)("a1", verbose=True)
    assert capsys.readouterr().out == "\x1b[1;36m── Session a1 ──\x1b[0m\nhello from a1\n"


def test_verbose_is_coloured_on_a_terminal(api, respx_mock, capsys, monkeypatch):
    import sys

    respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(text="x")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    api.logs("a1", verbose=True)
    assert capsys.readouterr().out.startswith("\x1b[1;36m── Session a1 ──\x1b[0m\n")


def test_verbose_output_is_printed_by_the_callers_thread(respx_mock, monkeypatch):
    import threading

    respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(text="x")
    threads: list[str] = []
    monkeypatch.setattr(
        sessions_module,
        "_print_texts",
        lambda texts: threads.append(threading.current_thread().name),
    )
    with Session(url=BASE, token=TOKEN) as session:
        session.logs("a1", verbose=True)
    assert threads == [threading.current_thread().name]


# -- ids: one, many, none ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "empty"),
    [("info", []), ("logs", {}), ("events", []), ("destroy", {}), ("renew", {}), ("wait", [])],
)
def test_empty_id_list_makes_no_request(api, respx_mock, method, empty):
    assert getattr(api, method)([]) == empty
    assert respx_mock.calls.call_count == 0


@pytest.mark.parametrize("method", ["info", "logs", "events", "destroy", "renew", "connect"])
@pytest.mark.parametrize("bad", ["", "a/b", ["ok", "x?y"]])
def test_odd_ids_are_rejected_before_any_request(api, respx_mock, method, bad):
    with pytest.raises(ValueError, match="invalid session id"):
        getattr(api, method)(bad)
    assert respx_mock.calls.call_count == 0


def test_verbose_with_no_ids_returns_none(api, respx_mock, capsys):
    assert api.logs([], verbose=True) is None
    assert api.events([], verbose=True) is None
    assert capsys.readouterr().out == ""


# -- create ----------------------------------------------------------------------------------------


def test_create_posts_a_form_body(api, respx_mock):
    route = respx_mock.post(BASE + "session").respond(text="q2w8e4r6\n")
    ids = api.create(
        "job",
        image="skaha/terminal:1.1.2",
        cores=2,
        ram=8,
        gpu=1,
        cmd="python",
        args="-c 'print(1)'",
        env={"A": 1},
    )
    assert ids == ["q2w8e4r6"]
    request = route.calls.last.request
    assert request.url.query == b""
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == [
        ("name", "job"),
        ("image", IMAGE),
        ("cores", "2"),
        ("ram", "8"),
        ("type", "headless"),
        ("gpus", "1"),
        ("cmd", "python"),
        ("args", "-c 'print(1)'"),
        ("env", "A=1"),
        ("env", "REPLICA_ID=1"),
        ("env", "REPLICA_COUNT=1"),
    ]
    _assert_auth(request)


def test_create_replicas_in_replica_order(api, respx_mock):
    async def answer(request: httpx.Request) -> httpx.Response:
        name = dict(form(request))["name"]
        replica = int(name.rsplit("-", 1)[1])
        await asyncio.sleep(0.01 * (5 - replica))  # later replicas answer first
        return httpx.Response(200, text=f"id-{replica}\n")

    route = respx_mock.post(BASE + "session").mock(side_effect=answer)
    assert api.create("batch", image=IMAGE, replicas=4) == ["id-1", "id-2", "id-3", "id-4"]
    names = sorted(dict(form(c.request))["name"] for c in route.calls)
    assert names == ["batch-1", "batch-2", "batch-3", "batch-4"]
    envs = sorted(tuple(v for k, v in form(c.request) if k == "env") for c in route.calls)
    assert envs[0] == ("REPLICA_ID=1", "REPLICA_COUNT=4")


def test_launch_replicas_reruns_one_replica_with_its_own_number(api, respx_mock):
    def answer(request: httpx.Request) -> httpx.Response:
        if dict(form(request))["name"] == "scan-7":
            return httpx.Response(500, text="boom")
        return httpx.Response(200, text="new6\n")

    route = respx_mock.post(BASE + "session").mock(side_effect=answer)
    request = CreateRequest(name="scan", image=IMAGE, cmd="env")
    six, seven = api.launch_replicas(request, [6, 7], total=12)
    assert (six.replica, six.id, six.error) == (6, "new6", None)
    assert seven.replica == 7 and seven.id is None and isinstance(seven.error, httpx.HTTPError)
    fields = form(route.calls[0].request)
    sent = fields if dict(fields)["name"] == "scan-6" else form(route.calls[1].request)
    assert dict(sent)["name"] == "scan-6"
    assert [v for k, v in sent if k == "env"] == ["REPLICA_ID=6", "REPLICA_COUNT=12"]
    with pytest.raises(ValueError, match="between 1 and total"):
        api.launch_replicas(request, [13], total=12)


def test_create_accepts_a_create_request(api, respx_mock):
    route = respx_mock.post(BASE + "session").respond(text="x\n")
    request = CreateRequest(name="nb", image="skaha/astroml", kind="notebook", cores=4, replicas=2)
    assert api.create(request) == ["x", "x"]
    assert dict(form(route.calls.last.request))["type"] == "notebook"
    assert route.call_count == 2


def test_create_validates_before_any_request(api, respx_mock):
    with pytest.raises(TypeError, match="image is required"):
        api.create("job")
    with pytest.raises(ValueError):
        api.create("job", image=IMAGE, cores=0)
    with pytest.raises(ValueError, match="only allowed for headless"):
        api.create("nb", image=IMAGE, kind="notebook", cmd="echo")
    with pytest.raises(ValueError):
        api.create("job", image=IMAGE, errors="sometimes")
    assert respx_mock.calls.call_count == 0


def test_create_failures_are_omitted_and_never_retried(api, respx_mock, slept, caplog):
    async def answer(request: httpx.Request) -> httpx.Response:
        name = dict(form(request))["name"]
        if name == "b-2":
            return httpx.Response(
                503, text="temporarily unavailable\n", headers={"Retry-After": "1"}
            )
        return httpx.Response(200, text=f"{name}-id\n")

    route = respx_mock.post(BASE + "session").mock(side_effect=answer)
    with (
        caplog.at_level(logging.WARNING, logger="canfar_widgets.sessions"),
        pytest.warns(
            LaunchWarning,
            match=r"^create launched 2 of 3 sessions \('b'\): replica 2/3: ServiceUnavailable 503$",
        ),
    ):
        assert api.create("b", image=IMAGE, env={"SECRET": "hush"}, replicas=3) == [
            "b-1-id",
            "b-3-id",
        ]
    assert route.call_count == 3  # the 503 was not retried: a retry could launch twice
    assert slept == []
    messages = [r.getMessage() for r in caplog.records if r.name == "canfar_widgets.sessions"]
    assert messages == ["create failed for replica 2/3 (ServiceUnavailable 503)"]


def test_create_total_failure_returns_empty(api, respx_mock):
    respx_mock.post(BASE + "session").respond(
        400, text="name can only contain alpha-numeric chars and '-'"
    )
    with pytest.warns(
        LaunchWarning, match=r"launched 0 of 2 .*replica 1/2: BadRequest 400: name can only"
    ):
        assert api.create("b", image=IMAGE, replicas=2) == []


def test_create_raise_policy_after_all_attempts(api, respx_mock):
    done: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        name = dict(form(request))["name"]
        if name == "b-1":
            return httpx.Response(
                400, text="User alice has reached the maximum of 5 active sessions.\n"
            )
        await asyncio.sleep(0.05)  # still finishes before the error is raised
        done.append(name)
        return httpx.Response(200, text="ok\n")

    respx_mock.post(BASE + "session").mock(side_effect=answer)
    with pytest.raises(BadRequest) as info:
        api.create("b", image=IMAGE, replicas=3, errors="raise")
    assert info.value.message == "User alice has reached the maximum of 5 active sessions."
    assert sorted(done) == ["b-2", "b-3"]


def test_create_with_one_off_registry_credentials(api, respx_mock):
    route = respx_mock.post(BASE + "session").respond(text="x\n")
    registry = ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    api.create("job", image="images.canfar.net/private/thing:1", registry=registry)
    _assert_auth(route.calls.last.request, registry=True)
    api.create("job", image=IMAGE)
    _assert_auth(route.calls.last.request, registry=False)  # for that call only


def test_one_off_registry_beats_the_configured_one(make_api, respx_mock):
    api = make_api(registry=ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET))
    route = respx_mock.post(BASE + "session").respond(text="x\n")
    api.create("job", image=IMAGE, registry=ContainerRegistry(username="other", secret="pw"))
    expected = base64.b64encode(b"other:pw").decode()
    assert route.calls.last.request.headers["x-skaha-registry-auth"] == expected
    api.create("job", image=IMAGE)
    _assert_auth(route.calls.last.request, registry=True)


def test_registry_header_on_every_request(make_api, respx_mock):
    api = make_api(registry=ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET))
    respx_mock.get(BASE + "session").respond(json=[])
    respx_mock.post(BASE + "session").respond(text="x\n")
    respx_mock.delete(BASE + "session/a1").respond(200)
    api.fetch()
    api.create("job", image=IMAGE)
    api.destroy("a1")
    for call in respx_mock.calls:
        _assert_auth(call.request, registry=True)


# -- fan-out is concurrent and bounded ---------------------------------------------------------------


class InFlight:
    """A respx side effect that takes 50 ms and counts requests in flight."""

    def __init__(self, text: str = "id") -> None:
        self.now = 0
        self.peak = 0
        self.text = text

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
        return httpx.Response(200, text=f"{self.text}\n")


@pytest.mark.parametrize(("concurrency", "peak"), [(None, 32), (8, 8)])
def test_create_fans_out_concurrently_up_to_the_limit(make_api, respx_mock, concurrency, peak):
    api = make_api(concurrency=concurrency)
    counter = InFlight()
    respx_mock.post(BASE + "session").mock(side_effect=counter)
    assert len(api.create("many", image=IMAGE, replicas=40)) == 40
    assert counter.peak == peak  # not 1 (sequential) and never above the limit


def test_multi_id_calls_fan_out_too(make_api, respx_mock):
    api = make_api(concurrency=5)
    counter = InFlight()
    respx_mock.delete(url__regex=r".*/session/s\d+$").mock(side_effect=counter)
    ids = [f"s{i}" for i in range(12)]
    assert api.destroy(ids) == dict.fromkeys(ids, True)
    assert counter.peak == 5


def test_the_limit_is_shared_by_concurrent_calls(respx_mock):
    counter = InFlight()
    respx_mock.delete(url__regex=r".*/session/s\d+$").mock(side_effect=counter)

    async def main():
        async with AsyncSession(url=BASE, token=TOKEN, concurrency=6) as session:
            await asyncio.gather(*(session.destroy([f"s{i}", f"s{i + 20}"]) for i in range(10)))

    asyncio.run(main())
    assert counter.peak == 6


# -- destroy / destroy_with / renew ------------------------------------------------------------------------


def test_destroy(api, respx_mock, slept):
    respx_mock.delete(BASE + "session/a1").respond(200)
    route = respx_mock.delete(BASE + "session/b2").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(200),
        ]  # retried: deleting twice is harmless
    )
    respx_mock.delete(BASE + "session/c3").respond(403, text="Not authorized")
    assert api.destroy("a1") == {"a1": True}
    assert api.destroy(["a1", "b2", "c3"]) == {"a1": True, "b2": True, "c3": False}
    assert route.call_count == 2 and len(slept) == 1
    with pytest.raises(httpx.HTTPStatusError, match="Not authorized"):
        api.destroy(["c3", "a1"], errors="raise")


def _prune_routes(respx_mock):
    rows = [
        record("a1", "Completed", name="batch-1"),
        record("a2", "Completed", name="batch-2"),
        record("a3", "Completed", name="xbatch-3"),
        record("a4", "Completed", name="other"),
    ]
    listing = respx_mock.get(BASE + "session").respond(json=rows)
    deletes = respx_mock.delete(url__regex=r".*/session/a\d$").respond(200)
    return listing, deletes


def test_destroy_with_literal_prefix(api, respx_mock):
    listing, deletes = _prune_routes(respx_mock)
    assert api.destroy_with("batch-") == {"a1": True, "a2": True}
    assert list(listing.calls.last.request.url.params.multi_items()) == [
        ("type", "headless"),
        ("status", "Completed"),
    ]
    assert sorted(c.request.url.path for c in deletes.calls) == [
        "/skaha/v1/session/a1",
        "/skaha/v1/session/a2",
    ]


def test_destroy_with_regex(api, respx_mock):
    _prune_routes(respx_mock)
    assert api.destroy_with(r"batch-\d$") == {"a1": True, "a2": True, "a3": True}  # re.search
    assert api.destroy_with("^other$") == {"a4": True}
    assert api.destroy_with("nothing-matches") == {}


def test_destroy_with_kind_status_and_succeeded(api, respx_mock):
    listing, _ = _prune_routes(respx_mock)
    api.destroy_with("batch", kind="notebook", status="Succeeded")
    assert list(listing.calls.last.request.url.params.multi_items()) == [
        ("type", "notebook"),
        ("status", "Completed"),
    ]
    # (issue 11: kind and status were keyword-only as in canfar; the skaha 1.6 page's
    # positional form destroy_with(prefix, kind, status) is now accepted too.)
    api.destroy_with("batch", "notebook", "Failed")
    assert list(listing.calls.last.request.url.params.multi_items()) == [
        ("type", "notebook"),
        ("status", "Failed"),
    ]


def test_destroy_with_invalid_regex(api, respx_mock):
    with pytest.raises(ValueError, match=r"^Invalid regex pattern 'batch\[': "):
        api.destroy_with("batch[")
    assert respx_mock.calls.call_count == 0


def test_renew(api, respx_mock):
    ok = respx_mock.post(BASE + "session/a1").respond(200)
    respx_mock.post(BASE + "session/h1").respond(400, text="No active job for user")
    assert api.renew("a1") == {"a1": True}
    assert api.renew(["a1", "h1"]) == {"a1": True, "h1": False}
    request = ok.calls.last.request
    assert form(request) == [("action", "renew")] and request.url.query == b""
    with pytest.raises(BadRequest, match="No active job"):
        api.renew("h1", errors="raise")


# -- connect ----------------------------------------------------------------------------------------------


def test_connect_opens_running_sessions_and_warns_about_others(api, respx_mock, monkeypatch):
    url = "https://example.org/session/notebook/a1/lab?token=a1"
    respx_mock.get(BASE + "session/a1").respond(json=record("a1", connectURL=url, type="notebook"))
    respx_mock.get(BASE + "session/p2").respond(json=record("p2", status="Pending"))
    respx_mock.get(BASE + "session/h3").respond(json=record("h3"))  # running headless: no URL
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open_new_tab", opened.append)
    with pytest.warns(UserWarning, match=r"^Session p2 is Pending; wait until it is Running$"):
        assert api.connect(["a1", "p2", "h3"]) is None
    assert opened == [url]


def test_connect_in_a_kernel_displays_links(api, respx_mock, monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display

    url = "https://example.org/session/carta/a1/?x=1&y=2"
    respx_mock.get(BASE + "session/a1").respond(
        json=record("a1", name="my <carta>", connectURL=url)
    )
    shown: list[object] = []
    monkeypatch.setattr(sessions_module, "_in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(webbrowser, "open_new_tab", pytest.fail)
    api.connect("a1")
    [html] = shown
    assert 'href="https://example.org/session/carta/a1/?x=1&amp;y=2"' in html.data
    assert "my &lt;carta&gt;" in html.data


# -- wait --------------------------------------------------------------------------------------------------


def test_wait_until_running(api, respx_mock):
    respx_mock.get(BASE + "session/a1").mock(
        side_effect=[
            httpx.Response(200, json=record("a1", "Pending")),
            httpx.Response(200, json=record("a1", "Pending")),
            httpx.Response(200, json=record("a1", "Running")),
        ]
    )
    respx_mock.get(BASE + "session/b2").respond(json=record("b2", "Running"))
    final = api.wait(["a1", "b2"], interval=0.01)
    assert [r["id"] for r in final] == ["a1", "b2"]
    assert all(r["status"] == "Running" for r in final)


def test_wait_returns_a_session_that_failed_instead_of_hanging(api, respx_mock):
    respx_mock.get(BASE + "session/a1").mock(
        side_effect=[
            httpx.Response(200, json=record("a1", "Pending")),
            httpx.Response(200, json=record("a1", "Failed (DeadlineExceeded)")),
        ]
    )
    assert api.wait("a1", interval=0.01, timeout=5)[0]["status"] == "Failed (DeadlineExceeded)"


def test_wait_until_finished(api, respx_mock):
    respx_mock.get(BASE + "session/a1").mock(
        side_effect=[
            httpx.Response(200, json=record("a1", "Running")),
            httpx.Response(200, json=record("a1", "Completed")),
        ]
    )
    assert api.wait("a1", until="finished", interval=0.01)[0]["status"] == "Completed"


def test_wait_times_out_naming_the_laggards(api, respx_mock):
    respx_mock.get(BASE + "session/a1").respond(json=record("a1", "Running"))
    respx_mock.get(BASE + "session/b2").respond(json=record("b2", "Pending"))
    with pytest.raises(TimeoutError, match=r"sessions not Running after 0.1 s: b2$"):
        api.wait(["a1", "b2"], timeout=0.1, interval=0.02)
    with pytest.raises(ValueError):
        api.wait("a1", until="Completed")


# -- images / context / repositories ----------------------------------------------------------------------------


def test_images_context_repositories(api, respx_mock):
    images = respx_mock.get(BASE + "image").respond(
        json=[
            {
                "id": "images.canfar.net/skaha/astroml:latest",
                "types": ["notebook", "headless"],
                "digest": "sha256:4f1c",
            },
        ]
    )
    respx_mock.get(BASE + "context").respond(
        json={
            "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 8, "options": [1, 2, 4]},
            "memoryGB": {"default": 8, "options": [1, 2, 4, 8]},
            "gpus": {"options": [1, 2]},
            "maxInteractiveSessions": "5",
        }
    )
    respx_mock.get(BASE + "repository").respond(json=["images.canfar.net"])

    found = api.images()
    assert isinstance(found[0], Image) and found[0].types == ["notebook", "headless"]
    api.images(kind="notebook")
    assert list(images.calls.last.request.url.params.multi_items()) == [("type", "notebook")]
    assert images.calls[0].request.url.query == b""
    context = api.context()
    assert isinstance(context, Context)
    assert context.cores.options == [1, 2, 4] and context.maxInteractiveSessions == 5
    assert api.repositories() == ["images.canfar.net"]
    with pytest.raises(ValueError):
        api.images(kind="laptop")


# -- failure policy ----------------------------------------------------------------------------------------------


def test_client_policy_and_validation(make_api, respx_mock):
    respx_mock.get(BASE + "session/zz").respond(404, text="session zz not found")
    strict = make_api(errors="raise")
    assert strict.client.errors == "raise"
    with pytest.raises(NotFound):
        strict.info("zz")
    strict.client.errors = "ignore"
    assert strict.info("zz") == []
    with pytest.raises(ValueError):
        strict.client.errors = "loud"
    with pytest.raises(ValueError):
        strict.info("zz", errors="loud")


def test_non_http_failures_always_raise(api, respx_mock):
    respx_mock.get(BASE + "session/a1").mock(
        side_effect=RuntimeError("a bug, not a failed request")
    )
    with pytest.raises(RuntimeError, match="a bug"):
        api.info("a1", errors="ignore")


def test_connection_failures_are_item_failures(api, respx_mock, slept):
    respx_mock.get(BASE + "session/a1").mock(side_effect=httpx.ConnectError("refused"))
    respx_mock.get(BASE + "session/b2").respond(json=record("b2"))
    assert api.info(["a1", "b2"]) == [record("b2")]
    with pytest.raises(httpx.ConnectError):
        api.info(["a1", "b2"], errors="raise")


# -- the client objects -----------------------------------------------------------------------------------------------


def test_repr_shows_url_and_auth_mode_only():
    registry = ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    for cls in (Session, AsyncSession):
        client = cls(url="https://ws.example.org/skaha/v1", token=TOKEN, registry=registry)
        assert (
            repr(client) == f"{cls.__name__}(url='https://ws.example.org/skaha/v1/', auth='token')"
        )
        client.close()


def test_unknown_keywords_warn():
    with pytest.warns(UserWarning, match="frobnicate"):
        Session(url=BASE, token=TOKEN, frobnicate=True).close()


def test_sync_methods_mirror_the_async_ones():
    names = [
        "fetch",
        "stats",
        "info",
        "logs",
        "events",
        "create",
        "destroy",
        "destroy_with",
        "renew",
        "connect",
        "wait",
        "images",
        "context",
        "repositories",
    ]
    for name in names:
        sync, coro = getattr(Session, name), getattr(AsyncSession, name)
        assert inspect.iscoroutinefunction(coro) and not inspect.iscoroutinefunction(sync)
        assert inspect.signature(sync) == inspect.signature(coro)
        assert sync.__doc__.splitlines()[0] == coro.__doc__.splitlines()[0]
        assert "await " not in sync.__doc__
    assert inspect.signature(Session) == inspect.signature(AsyncSession)


def test_sync_session_exposes_its_async_session(respx_mock):
    respx_mock.get(BASE + "session").respond(json=[])
    with Session(url=BASE, token=TOKEN, errors="raise") as session:
        inner = session.async_session
        assert isinstance(inner, AsyncSession) and inner._wire is session._wire
        assert inner.errors == "raise"
        session.errors = "ignore"
        assert inner.errors == "ignore"
        assert asyncio.run(inner.fetch()) == []


def test_sync_context_manager_closes(respx_mock):
    respx_mock.get(BASE + "session").respond(json=[])
    with Session(url=BASE, token=TOKEN) as session:
        session.fetch()
        client = session._wire._client
    assert client.is_closed and session._wire._client is None


async def test_async_context_managers_close(respx_mock):
    respx_mock.get(BASE + "session").respond(json=[])
    async with AsyncSession(url=BASE, token=TOKEN) as session:
        await session.fetch()
        first = session._wire._client
    assert first.is_closed
    with AsyncSession(url=BASE, token=TOKEN) as session:  # plain `with`, as canfar's docs
        await session.fetch()
        second = session._wire._client
    assert second.is_closed


async def test_one_async_session_from_two_loops_at_once(respx_mock):
    """Awaited on this loop while the runner polls it: never crosses loops."""
    from canfar_widgets.runner import get_runner

    async def slow(request):
        await asyncio.sleep(0.02)
        return httpx.Response(200, json=[])

    respx_mock.get(BASE + "session").mock(side_effect=slow)
    async with AsyncSession(url=BASE, token=TOKEN) as session:
        background = get_runner().spawn(session.fetch())  # as a widget would
        results = await asyncio.gather(
            session.fetch(), asyncio.to_thread(lambda: asyncio.run(session.fetch()))
        )
        assert results == [[], []]
        assert await asyncio.wrap_future(background) == []
        assert session._wire._loop is get_runner().loop
