"""Fan-out benchmark: create N replicas, then ``info`` them, against a 50 ms-latency server.

Subjects: our ``Session`` and ``AsyncSession``, the official ``canfar`` 1.5.2 ``Session`` and
``AsyncSession``, and the ideal ``ceil(N / concurrency) x latency`` per phase.

The "server" is an in-process httpx transport that sleeps 50 ms per request (``asyncio.sleep``
for async clients, ``time.sleep`` for canfar's sync client) and serves at most
``concurrency`` requests at once. That cap stands in for the connection pool: canfar only
sets ``Limits(max_connections=concurrency)`` when it builds its own transport, so with an
injected one it would otherwise be measured with no limit at all.

canfar 1.5.2 speaks httpx2 and takes a ``transport=`` keyword (what its own tests inject);
for an older canfar without it, its client classes are patched as its tests used to do.

Run ``python bench/bench_fanout.py [--fast]`` for a table; ``run(fast=True)`` returns rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import httpx

URL = "https://bench.invalid/skaha/v1/"
TOKEN = "bench-token"
IMAGE = "images.canfar.net/skaha/terminal:1.1.2"
LATENCY = 0.05
CONCURRENCY = 32


# -- the simulated server ---------------------------------------------------------------------------


class _Platform:
    """What the fake server answers; shared by the httpx and httpx2 transports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def answer(self, method: str, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for a request."""
        tail = path.rsplit("/skaha/v1/", 1)[-1]
        if method == "POST" and tail == "session":
            with self._lock:
                self._count += 1
                key = f"b{self._count:07d}"
            return 200, "text/plain", key + "\n"
        if method == "GET" and tail == "session":
            return 200, "application/json", "[]"
        if method == "GET" and tail.startswith("session/"):
            key = tail.split("/", 1)[1]
            record = {"id": key, "name": f"bench-{key}", "type": "headless", "status": "Running",
                      "image": IMAGE, "connectURL": "", "isFixedResources": False}
            return 200, "application/json", json.dumps(record)
        return 404, "text/plain", f"no route for {method} {path}\n"


class AsyncLatencyTransport(httpx.AsyncBaseTransport):
    """httpx async transport: ``latency`` seconds per request, ``limit`` requests at a time."""

    def __init__(self, platform: _Platform, latency: float = LATENCY, limit: int = CONCURRENCY) -> None:
        self.platform, self.latency, self.limit = platform, latency, limit
        self._slots: dict[int, asyncio.Semaphore] = {}  # one per loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots = self._slots.setdefault(id(asyncio.get_running_loop()), asyncio.Semaphore(self.limit))
        async with slots:
            await asyncio.sleep(self.latency)
        status, kind, body = self.platform.answer(request.method, request.url.path)
        return httpx.Response(status, headers={"Content-Type": kind}, text=body)


def _official_transports(platform: _Platform, latency: float, limit: int) -> tuple[Any, Any]:
    """httpx2 transports for canfar 1.5.2: one sync (time.sleep), one async (asyncio.sleep)."""
    import httpx2

    class SyncTransport(httpx2.BaseTransport):
        def __init__(self) -> None:
            self._slots = threading.BoundedSemaphore(limit)

        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            with self._slots:
                time.sleep(latency)
            status, kind, body = platform.answer(request.method, request.url.path)
            return httpx2.Response(status, headers={"Content-Type": kind}, text=body)

    class AsyncTransport(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            self._slots: dict[int, asyncio.Semaphore] = {}

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            slots = self._slots.setdefault(id(asyncio.get_running_loop()), asyncio.Semaphore(limit))
            async with slots:
                await asyncio.sleep(latency)
            status, kind, body = platform.answer(request.method, request.url.path)
            return httpx2.Response(status, headers={"Content-Type": kind}, text=body)

    return SyncTransport(), AsyncTransport()


@contextlib.contextmanager
def _official_client(cls: type, transport: Any) -> Iterator[Any]:
    """An official session using ``transport``, whichever way this canfar version allows."""
    from canfar.client import HTTPClient

    if "transport" in inspect.signature(HTTPClient.__init__).parameters:
        yield cls(url=URL, token=TOKEN, concurrency=CONCURRENCY, transport=transport)
        return
    # Older canfar: patch the client classes it builds (what its own tests do).
    import canfar.client as client_module

    sync_cls, async_cls = client_module.Client, client_module.AsyncClient
    with mock.patch.object(client_module, "Client",
                           side_effect=lambda **kw: sync_cls(transport=transport, **kw)), \
         mock.patch.object(client_module, "AsyncClient",
                           side_effect=lambda **kw: async_cls(transport=transport, **kw)):
        yield cls(url=URL, token=TOKEN, concurrency=CONCURRENCY)


# -- measuring -------------------------------------------------------------------------------------------


def _timed_sync(session: Any, n: int) -> tuple[float, float, int]:
    session.fetch()  # warm-up: client creation is not what is measured
    t0 = time.perf_counter()
    ids = session.create("bench", image=IMAGE, replicas=n)
    t1 = time.perf_counter()
    records = session.info(ids)
    t2 = time.perf_counter()
    if len(ids) != n or len(records) != n:
        raise RuntimeError(f"expected {n} sessions, got {len(ids)} ids and {len(records)} records")
    return t1 - t0, t2 - t1, n


def _timed_async(session: Any, n: int) -> tuple[float, float, int]:
    async def main() -> tuple[float, float, int]:
        await session.fetch()
        t0 = time.perf_counter()
        ids = await session.create("bench", image=IMAGE, replicas=n)
        t1 = time.perf_counter()
        records = await session.info(ids)
        t2 = time.perf_counter()
        if len(ids) != n or len(records) != n:
            raise RuntimeError(f"expected {n} sessions, got {len(ids)} ids and {len(records)} records")
        return t1 - t0, t2 - t1, n

    return asyncio.run(main())


def _subjects(latency: float) -> list[tuple[str, Callable[[int], tuple[float, float, int]]]]:
    from canfar_widgets.sessions import AsyncSession, Session

    def ours(cls: type, timed: Callable[[Any, int], tuple[float, float, int]]):
        def measure(n: int) -> tuple[float, float, int]:
            transport = AsyncLatencyTransport(_Platform(), latency, CONCURRENCY)
            session = cls(url=URL, token=TOKEN, concurrency=CONCURRENCY, transport=transport)
            try:
                return timed(session, n)
            finally:
                session.close()

        return measure

    def official(kind: str):
        def measure(n: int) -> tuple[float, float, int]:
            from canfar.sessions import AsyncSession as OfficialAsync
            from canfar.sessions import Session as OfficialSync

            sync_transport, async_transport = _official_transports(_Platform(), latency, CONCURRENCY)
            if kind == "sync":
                with _official_client(OfficialSync, sync_transport) as session:
                    try:
                        return _timed_sync(session, n)
                    finally:
                        session._close()
            with _official_client(OfficialAsync, async_transport) as session:
                return _timed_async(session, n)

        return measure

    return [
        ("canfar_widgets.Session", ours(Session, _timed_sync)),
        ("canfar_widgets.AsyncSession", ours(AsyncSession, _timed_async)),
        ("canfar.Session (1.5.2)", official("sync")),
        ("canfar.AsyncSession (1.5.2)", official("async")),
    ]


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Measure every subject; one row per (phase, subject), plus the ideal.

    Rows: ``{benchmark, subject, value, unit, target, note}``; ``value`` is seconds and
    ``target`` the ideal ``ceil(N / concurrency) x latency`` of that phase.

    Example:
        >>> rows = run(fast=True)
        >>> {row["subject"] for row in rows} >= {"ideal", "canfar_widgets.Session"}
        True
    """
    n = 20 if fast else 100
    latency = LATENCY
    ideal = math.ceil(n / CONCURRENCY) * latency
    rows: list[dict[str, Any]] = []
    for phase in ("create", "info"):
        rows.append(_row(phase, n, "ideal", ideal, ideal,
                         f"ceil({n}/{CONCURRENCY}) x {latency * 1000:.0f} ms"))
    for subject, measure in _subjects(latency):
        try:
            created, read, _ = measure(n)
        except Exception as err:  # a subject that cannot run is reported, not fatal
            for phase in ("create", "info"):
                rows.append(_row(phase, n, subject, float("nan"), ideal, f"failed: {type(err).__name__}: {err}"))
            continue
        for phase, value in (("create", created), ("info", read)):
            rows.append(_row(phase, n, subject, value, ideal, f"{value / ideal:.1f}x ideal"))
    return rows


def _row(phase: str, n: int, subject: str, value: float, target: float, note: str) -> dict[str, Any]:
    return {
        "benchmark": f"fanout-{phase} N={n} latency={LATENCY * 1000:.0f}ms concurrency={CONCURRENCY}",
        "subject": subject,
        "value": round(value, 4),
        "unit": "s",
        "target": round(target, 4),
        "note": note,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["benchmark", "subject", "value", "unit", "target", "note"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns),
             "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
