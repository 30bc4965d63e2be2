"""Compatibility with the official client: same routes, same requests, same results.

``canfar`` 1.5.2 speaks httpx2, which respx does not patch, so its clients get a transport
(its own ``transport=`` keyword, as its tests inject one) that hands each request to the
*same* respx router our clients hit. Every request both make is then compared: method,
path, parameters in order (canfar puts create parameters in the query string, we put them
in a form body: the sequence must be identical) and the auth headers.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import httpx
import httpx2
import pytest
from canfar.models.config import Configuration as OfficialConfiguration
from canfar.models.registry import ContainerRegistry as OfficialRegistry
from canfar.sessions import AsyncSession as OfficialAsyncSession
from canfar.sessions import Session as OfficialSession
from wire_support import BASE, REGISTRY_SECRET, REGISTRY_USER, TOKEN, record

from canfar_widgets.errors import LaunchWarning
from canfar_widgets.models import ContainerRegistry
from canfar_widgets.sessions import AsyncSession, Session

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = pytest.mark.usefixtures("clean_home")


class RespxBridge(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """An httpx2 transport answering from a respx router (so both clients share routes)."""

    def __init__(self, router: Any) -> None:
        self.router = router

    @staticmethod
    def _to_httpx(request: httpx2.Request) -> httpx.Request:
        return httpx.Request(
            request.method, str(request.url), headers=request.headers.raw, content=request.read()
        )

    @staticmethod
    def _to_httpx2(response: httpx.Response) -> httpx2.Response:
        return httpx2.Response(
            response.status_code, headers=response.headers.raw, content=response.content
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._to_httpx2(self.router.handler(self._to_httpx(request)))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._to_httpx2(await self.router.async_handler(self._to_httpx(request)))


CLIENTS = ["official-sync", "official-async", "ours-sync", "ours-async"]


@pytest.fixture
def clients(respx_mock):
    bridge = RespxBridge(respx_mock)
    config = OfficialConfiguration(
        registry=OfficialRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    )
    registry = ContainerRegistry(username=REGISTRY_USER, secret=REGISTRY_SECRET)
    made = {
        "official-sync": OfficialSession(url=BASE, token=TOKEN, config=config, transport=bridge),
        "official-async": OfficialAsyncSession(
            url=BASE, token=TOKEN, config=config, transport=bridge
        ),
        "ours-sync": Session(url=BASE, token=TOKEN, registry=registry),
        "ours-async": AsyncSession(url=BASE, token=TOKEN, registry=registry),
    }
    yield made
    made["official-sync"]._close()
    made["ours-sync"].close()
    made["ours-async"].close()


def _params(request: httpx.Request) -> list[tuple[str, str]]:
    """Query plus form-body parameters, in order: what the server reads either way."""
    params = list(request.url.params.multi_items())
    if request.method == "POST" and request.content:
        params += parse_qsl(request.content.decode(), keep_blank_values=True)
    return params


def _describe(request: httpx.Request) -> tuple[Any, ...]:
    return (
        request.method,
        request.url.path,
        tuple(_params(request)),
        request.headers.get("authorization"),
        request.headers.get("x-skaha-registry-auth"),
        # the server reads POST parameters only with this content type (docs/local-platform.md)
        request.headers.get("content-type") if request.method == "POST" else None,
    )


def compare(respx_mock, clients, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on all four clients; assert identical requests and results."""
    results, sent = {}, {}
    for label in CLIENTS:
        client = clients[label]
        start = len(respx_mock.calls)
        call = getattr(client, method)
        result = asyncio.run(call(*args, **kwargs)) if "async" in label else call(*args, **kwargs)
        results[label] = result
        # async clients may send in any order; the multiset must match
        sent[label] = sorted(_describe(c.request) for c in list(respx_mock.calls)[start:])
    reference = sent["official-sync"]
    assert reference, "the official client sent nothing?"
    for label in CLIENTS[1:]:
        assert sent[label] == reference, label
        assert results[label] == results["official-sync"], label
    ours = [c.request for c in list(respx_mock.calls)[-len(reference) :]]
    for request in ours:  # and our POSTs never carry parameters in the URL
        if request.method == "POST":
            assert request.url.query == b""
    return results["official-sync"]


def test_create(respx_mock, clients):
    def answer(request: httpx.Request) -> httpx.Response:
        name = dict(_params(request))["name"]
        if name == "job-2":
            return httpx.Response(
                400, text="session image 'x' must come from one of [images.canfar.net]\n"
            )
        return httpx.Response(200, text=f"id-{name}\n")

    respx_mock.post(BASE + "session").mock(side_effect=answer)
    # A deliberate difference: ours also warns that fewer sessions were launched (issue 11).
    with pytest.warns(LaunchWarning, match="launched 2 of 3") as warned:
        result = compare(
            respx_mock,
            clients,
            "create",
            "job",
            image="skaha/terminal:1.1.2",
            cores=2,
            ram=8,
            gpu=1,
            cmd="python",
            args="-c 'print(1)'",
            env={"A": 1, "B": "x y"},
            replicas=3,
        )
    assert len(warned) == 2  # ours-sync and ours-async, not the official client
    assert result == ["id-job-1", "id-job-3"]
    compare(respx_mock, clients, "create", "solo", image="skaha/terminal:1.1.2")
    compare(respx_mock, clients, "create", "nb", image="skaha/astroml", kind="notebook")


def test_info(respx_mock, clients):
    respx_mock.get(BASE + "session/a1").respond(json=record("a1"))
    respx_mock.get(BASE + "session/b2").respond(json=record("b2", "Pending"))
    respx_mock.get(BASE + "session/zz").respond(404, text="session zz not found\n")
    assert compare(respx_mock, clients, "info", ["b2", "zz", "a1"]) == [
        record("b2", "Pending"),
        record("a1"),
    ]
    compare(respx_mock, clients, "info", "a1")


def test_logs(respx_mock, clients):
    respx_mock.get(BASE + "session/a1", params={"view": "logs"}).respond(text="hello\n")
    respx_mock.get(BASE + "session/zz", params={"view": "logs"}).respond(
        500, text="unexpected exception"
    )
    assert compare(respx_mock, clients, "logs", ["a1", "zz"]) == {"a1": "hello\n"}


def test_events(respx_mock, clients):
    table = "TYPE     REASON      MESSAGE\nNormal   Pulled      ok\n"
    respx_mock.get(BASE + "session/a1", params={"view": "events"}).respond(text=table)
    respx_mock.get(BASE + "session/zz", params={"view": "events"}).respond(
        404, text="session zz not found."
    )
    assert compare(respx_mock, clients, "events", ["zz", "a1"]) == [{"a1": table}]


def test_destroy(respx_mock, clients):
    respx_mock.delete(BASE + "session/a1").respond(200)
    respx_mock.delete(BASE + "session/zz").respond(
        403, text="Not authorized to use the skaha system"
    )
    assert compare(respx_mock, clients, "destroy", ["a1", "zz"]) == {"a1": True, "zz": False}


@pytest.mark.parametrize(
    ("prefix", "kwargs", "expected"),
    [
        ("batch-", {}, {"a1": True, "a2": True}),
        (r"-\d$", {}, {"a1": True, "a2": True, "a3": True}),
        ("batch", {"kind": "notebook", "status": "Running"}, {"a1": True, "a2": True}),
    ],
)
def test_destroy_with(respx_mock, clients, prefix, kwargs, expected):
    respx_mock.get(BASE + "session").respond(
        json=[
            record("a1", "Completed", name="batch-1"),
            record("a2", "Completed", name="batch-2"),
            record("a3", "Completed", name="xbatch-3"),
            record("a4", "Completed", name="other"),
        ]
    )
    respx_mock.delete(url__regex=r".*/session/a\d$").respond(200)
    assert compare(respx_mock, clients, "destroy_with", prefix, **kwargs) == expected


def test_fetch_and_stats(respx_mock, clients):
    respx_mock.get(BASE + "session", params={"view": "stats"}).respond(
        json={"cores": {}, "ram": {}}
    )
    respx_mock.get(BASE + "session").respond(json=[record("a1")])
    compare(respx_mock, clients, "fetch", kind="headless", status="Running")
    compare(respx_mock, clients, "fetch")
    compare(respx_mock, clients, "stats")


def test_succeeded_is_sent_as_completed_unlike_the_official_client(respx_mock, clients):
    """The one deliberate difference: servers report Completed, never Succeeded."""
    route = respx_mock.get(BASE + "session").respond(json=[])
    clients["official-sync"].fetch(status="Succeeded")
    clients["ours-sync"].fetch(status="Succeeded")
    official, ours = (c.request.url.params["status"] for c in route.calls)
    assert (official, ours) == ("Succeeded", "Completed")


def test_renew_sends_the_same_parameters(respx_mock, clients):
    respx_mock.post(BASE + "session/a1").respond(200)
    assert compare(respx_mock, clients, "renew", ["a1"]) == {"a1": True}
