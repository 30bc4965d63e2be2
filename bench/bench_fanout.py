"""Fan-out benchmark: create N replicas, ``info`` them, destroy them, with 50 ms per request.

Subjects: our ``Session`` and ``AsyncSession``, the official ``canfar`` 1.5.2 ``Session`` and
``AsyncSession``, and the ideal ``ceil(N / concurrency) x latency`` per phase. Every client
is built with ``concurrency=32``; the official sync ``Session`` sends one request at a time
whatever that setting says, which is what the 10x target is about.

Two servers, each its own benchmark:

* **local platform** (the one the targets are judged on): ``canfar_widgets.local.LocalPlatform``
  with ``faults.latency = 0.05``, so every API request waits 50 ms on the server before it
  is answered; real HTTP on loopback, real skaha v1 routes. A headless job with no ``cmd``
  completes at once without a process, and a deleted one is gone after ``terminating_delay``.
  The platform runs in a child process, as a real platform runs on another machine: in
  this process its request handling would take the GIL from the client being measured.
* **in-process transport**: an httpx transport that sleeps 50 ms per request and serves at
  most ``concurrency`` requests at once (asyncio.sleep for async clients, time.sleep for
  canfar's sync client). No sockets, no HTTP parsing: it isolates the clients' scheduling
  from transport costs. The cap stands in for the connection pool: canfar only sets
  ``Limits(max_connections=concurrency)`` when it builds its own transport.

Then issue 16's "client cost" rows: from the same +50 ms run, ``AsyncSession`` against the
ideal (target <= 1.2) and its client CPU per request against canfar's ``AsyncSession``
(target <= 1); and a second local platform with no added latency (+0 ms), where only the
two async clients run and the HTTP stack is all there is to measure: CPU per request and
time against canfar's (target <= 1 each).

Each repeat runs every subject in turn (round robin, so drift on a shared machine hits all
of them alike); per-phase figures are medians over repeats. Ratio rows carry the targets:
official sync / our sync >= 10; our async / official async <= 1.0 (no slower); ours / ideal
<= 1.3.

Run ``python bench/bench_fanout.py [--fast]`` for a table; ``run(fast=True)`` returns rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict as _verdict

URL = "https://bench.invalid/skaha/v1/"
TOKEN = "bench-token"
IMAGE = "images.canfar.net/skaha/terminal:1.1.2"
LATENCY = 0.05
CONCURRENCY = 32
PHASES = ("create", "info", "destroy")

OURS_SYNC = "canfar_widgets.Session"
OURS_ASYNC = "canfar_widgets.AsyncSession"
THEIRS_SYNC = "canfar.Session (1.5.2)"
THEIRS_ASYNC = "canfar.AsyncSession (1.5.2)"
SUBJECTS = (OURS_SYNC, OURS_ASYNC, THEIRS_SYNC, THEIRS_ASYNC)

Timings = dict[str, float]  # phase -> wall seconds, and "cpu": process CPU seconds for all three


# -- the in-process server -----------------------------------------------------------------------


class _Platform:
    """What the in-process fake server answers; shared by the httpx and httpx2 transports."""

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
            record = {
                "id": key,
                "name": f"bench-{key}",
                "type": "headless",
                "status": "Running",
                "image": IMAGE,
                "connectURL": "",
                "isFixedResources": False,
            }
            return 200, "application/json", json.dumps(record)
        if method == "DELETE" and tail.startswith("session/"):
            return 200, "text/plain", ""
        return 404, "text/plain", f"no route for {method} {path}\n"


class AsyncLatencyTransport(httpx.AsyncBaseTransport):
    """httpx async transport: ``latency`` seconds per request, ``limit`` requests at a time."""

    def __init__(
        self, platform: _Platform, latency: float = LATENCY, limit: int = CONCURRENCY
    ) -> None:
        self.platform, self.latency, self.limit = platform, latency, limit
        self._slots: dict[int, asyncio.Semaphore] = {}  # one per loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots = self._slots.setdefault(
            id(asyncio.get_running_loop()), asyncio.Semaphore(self.limit)
        )
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
    with (
        mock.patch.object(
            client_module, "Client", side_effect=lambda **kw: sync_cls(transport=transport, **kw)
        ),
        mock.patch.object(
            client_module,
            "AsyncClient",
            side_effect=lambda **kw: async_cls(transport=transport, **kw),
        ),
    ):
        yield cls(url=URL, token=TOKEN, concurrency=CONCURRENCY)


# -- the local platform, in a child process ------------------------------------------------------

_CHILD = """
import os, sys
from canfar_widgets.local import LocalPlatform
platform = LocalPlatform(token=os.environ["BENCH_PLATFORM_TOKEN"], metrics_interval=0,
                         headless_start_delay=0.0, terminating_delay=0.0)
platform.faults.latency = float(sys.argv[1])
platform.start()
print(platform.url, flush=True)
sys.stdin.read()   # serve until the parent closes our stdin
platform.stop()
"""


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_platform(latency: float = LATENCY) -> Iterator[tuple[str, str, int]]:
    """A ``LocalPlatform`` with ``faults.latency = latency`` in a child process: (url, token, pid)."""
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "BENCH_PLATFORM_TOKEN": token}
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(latency)],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as child:
        try:
            assert child.stdout is not None and child.stdin is not None
            url = child.stdout.readline().strip()
            if not url.startswith("http"):
                raise RuntimeError(f"the local platform did not start (exit {child.poll()})")
            yield url, token, child.pid
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()  # type: ignore[union-attr]
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# -- measuring ---------------------------------------------------------------------------------------


def _check(n: int, ids: Any, records: Any, gone: Any) -> None:
    if len(ids) != n or len(records) != n or len(gone) != n or not all(dict(gone).values()):
        raise RuntimeError(
            f"expected {n} sessions, got {len(ids)} ids, {len(records)} records, "
            f"{sum(1 for v in dict(gone).values() if v)} destroyed"
        )


def _timed_sync(session: Any, n: int) -> Timings:
    session.fetch()  # warm-up: client creation and the first connection are not measured
    c0 = time.process_time()
    t0 = time.perf_counter()
    ids = session.create("bench", image=IMAGE, replicas=n)
    t1 = time.perf_counter()
    records = session.info(ids)
    t2 = time.perf_counter()
    gone = session.destroy(ids)
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    _check(n, ids, records, gone)
    return {"create": t1 - t0, "info": t2 - t1, "destroy": t3 - t2, "cpu": cpu}


async def _atimed(session: Any, n: int) -> Timings:
    await session.fetch()
    c0 = time.process_time()
    t0 = time.perf_counter()
    ids = await session.create("bench", image=IMAGE, replicas=n)
    t1 = time.perf_counter()
    records = await session.info(ids)
    t2 = time.perf_counter()
    gone = await session.destroy(ids)
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    _check(n, ids, records, gone)
    return {"create": t1 - t0, "info": t2 - t1, "destroy": t3 - t2, "cpu": cpu}


Measure = Callable[[int], Timings]


def _local_subjects(url: str, token: str, pid: int) -> dict[str, Measure]:
    """The four clients against the local platform at ``url`` (real HTTP), served by ``pid``.

    Each measurement also gets ``server_cpu``: the platform process's CPU seconds meanwhile.
    A client that cannot be imported (canfar missing) fails as its own subject.
    """

    def client(module: str, name: str) -> Measure:
        def measure(n: int) -> Timings:
            cls = getattr(importlib.import_module(module), name)
            before = process_cpu(pid)
            if name == "Session":
                with cls(url=url, token=token, concurrency=CONCURRENCY) as session:
                    timings = _timed_sync(session, n)
            else:

                async def main() -> Timings:
                    async with cls(url=url, token=token, concurrency=CONCURRENCY) as session:
                        return await _atimed(session, n)

                timings = asyncio.run(main())
            after = process_cpu(pid)
            if before is not None and after is not None:
                timings["server_cpu"] = after - before
            return timings

        return measure

    return {
        OURS_SYNC: client("canfar_widgets.sessions", "Session"),
        OURS_ASYNC: client("canfar_widgets.sessions", "AsyncSession"),
        THEIRS_SYNC: client("canfar.sessions", "Session"),
        THEIRS_ASYNC: client("canfar.sessions", "AsyncSession"),
    }


def _transport_subjects(latency: float) -> dict[str, Measure]:
    """The four clients on the in-process latency transport (no HTTP)."""
    from canfar_widgets.sessions import AsyncSession, Session

    def ours(cls: type, timed: Callable[[Any, int], Timings]) -> Measure:
        def measure(n: int) -> Timings:
            transport = AsyncLatencyTransport(_Platform(), latency, CONCURRENCY)
            session = cls(url=URL, token=TOKEN, concurrency=CONCURRENCY, transport=transport)
            try:
                return timed(session, n)
            finally:
                session.close()

        return measure

    def official(kind: str) -> Measure:
        def measure(n: int) -> Timings:
            from canfar.sessions import AsyncSession as OfficialAsync
            from canfar.sessions import Session as OfficialSync

            sync_transport, async_transport = _official_transports(
                _Platform(), latency, CONCURRENCY
            )
            if kind == "sync":
                with _official_client(OfficialSync, sync_transport) as session:
                    try:
                        return _timed_sync(session, n)
                    finally:
                        session._close()
            with _official_client(OfficialAsync, async_transport) as session:
                return asyncio.run(_atimed(session, n))

        return measure

    return {
        OURS_SYNC: ours(Session, _timed_sync),
        OURS_ASYNC: ours(AsyncSession, lambda s, n: asyncio.run(_atimed(s, n))),
        THEIRS_SYNC: official("sync"),
        THEIRS_ASYNC: official("async"),
    }


def _measure_all(subjects: dict[str, Measure], n: int, repeats: int) -> dict[str, Any]:
    """subject -> {"phases": {phase: median s}, "total", "cpu": median s, "runs": k} or an error.

    The official sync client takes N x 3 x latency per run (15 s at N=100), so it gets at
    most 3 of the ``repeats``; the others get all of them.
    """
    samples: dict[str, list[Timings]] = {name: [] for name in subjects}
    errors: dict[str, str] = {}
    for round_ in range(repeats):
        for name, measure in subjects.items():
            if name in errors or (name == THEIRS_SYNC and round_ >= 3):
                continue
            try:
                samples[name].append(measure(n))
            except Exception as err:  # a subject that cannot run is reported, not fatal
                errors[name] = f"{type(err).__name__}: {err}"[:200]
    out: dict[str, Any] = {}
    for name in subjects:
        runs = samples[name]
        if name in errors or not runs:
            out[name] = errors.get(name, "no runs")
            continue
        out[name] = {
            "phases": {p: statistics.median(r[p] for r in runs) for p in PHASES},
            "total": statistics.median(totals := [sum(r[p] for p in PHASES) for r in runs]),
            "spread": (max(totals) - min(totals)) / statistics.median(totals),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "server_cpu": (
                statistics.median(r["server_cpu"] for r in runs)
                if all("server_cpu" in r for r in runs)
                else None
            ),
            "runs": len(runs),
        }
    return out


# -- rows --------------------------------------------------------------------------------------------


def _rows(label: str, n: int, latency: float, results: dict[str, Any]) -> list[dict[str, Any]]:
    bench = f"fanout N={n} {label}"
    ideal_phase = math.ceil(n / CONCURRENCY) * latency
    ideal = {"phases": dict.fromkeys(PHASES, ideal_phase), "total": ideal_phase * len(PHASES)}
    rows = [
        _row(
            bench,
            "ideal",
            ideal["total"],
            "s",
            "",
            f"ceil({n}/{CONCURRENCY}) x {latency * 1000:.0f} ms = {ideal_phase:.2f} s per phase",
        )
    ]
    for name in SUBJECTS:
        result = results.get(name)
        if isinstance(result, dict):
            phases = " / ".join(f"{p} {result['phases'][p]:.3g}" for p in PHASES)
            per_request = len(PHASES) * n
            cpu = f"client CPU {result['cpu'] / per_request * 1000:.2g} ms/request"
            if result["server_cpu"] is not None:
                cpu += f", server {result['server_cpu'] / per_request * 1000:.2g}"
            rows.append(
                _row(
                    bench,
                    name,
                    result["total"],
                    "s",
                    "",
                    f"{phases} s; {cpu}; median of {result['runs']} "
                    f"({result['spread']:.0%} spread)",
                )
            )
        else:
            rows.append(_row(bench, name, "n/a", "s", "", f"failed: {result}"))

    def ratio(subject: str, top: str, bottom: str, op: str = "", limit: float = 0.0) -> None:
        a = ideal if top == "ideal" else results.get(top)
        b = ideal if bottom == "ideal" else results.get(bottom)
        target = f"{op} {limit:g}" if op else ""
        if not isinstance(a, dict) or not isinstance(b, dict):
            rows.append(_row(bench, subject, "n/a", "x", target, "a subject failed: no ratio"))
            return
        value = a["total"] / b["total"]
        per = {p: a["phases"][p] / b["phases"][p] for p in PHASES}
        note = "per phase: " + ", ".join(f"{p} {v:.3g}" for p, v in per.items())
        if op:
            worst = min(per.values()) if op == ">=" else max(per.values())
            if _verdict(worst, op, limit) != "met":
                note += f" (worst phase {_verdict(worst, op, limit)})"
            spread = max(a.get("spread", 0.0), b.get("spread", 0.0))
            if _verdict(value, op, limit) != "met" and abs(value / limit - 1) <= spread:
                note += f"; within the run-to-run spread ({spread:.0%})"
            note = f"{_verdict(value, op, limit)}; {note}"
        rows.append(_row(bench, subject, value, "x", target, note))

    ratio(
        "speed-up: canfar.Session time / canfar_widgets.Session time",
        THEIRS_SYNC,
        OURS_SYNC,
        ">=",
        10,
    )
    ratio(
        "canfar_widgets.AsyncSession time / canfar.AsyncSession time",
        OURS_ASYNC,
        THEIRS_ASYNC,
        "<=",
        1.0,
    )
    ratio("canfar_widgets.Session time / ideal", OURS_SYNC, "ideal", "<=", 1.3)
    ratio("canfar_widgets.AsyncSession time / ideal", OURS_ASYNC, "ideal", "<=", 1.3)
    ratio("canfar.AsyncSession time / ideal (context, no target)", THEIRS_ASYNC, "ideal")
    return rows


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Both servers, every subject; rows ``{benchmark, subject, value, unit, target, note}``.

    Per server: the ideal and one row per client (``value``: median seconds for create +
    info + destroy of N sessions, per-phase medians in the note), then the ratio rows that
    carry the targets (``unit`` ``x``).

    Example:
        >>> rows = run(fast=True)
        >>> {row["subject"] for row in rows} >= {"ideal", "canfar_widgets.Session"}
        True
    """
    n = 20 if fast else 100
    repeats = 1 if fast else 5
    rows: list[dict[str, Any]] = []
    with local_platform(LATENCY) as (url, token, pid):
        results = _measure_all(_local_subjects(url, token, pid), n, repeats)
    rows += _rows(
        f"via local platform (HTTP, +{LATENCY * 1000:.0f} ms/request)", n, LATENCY, results
    )
    rows += _cost_rows(n, LATENCY, results)
    with local_platform(0.0) as (url, token, pid):
        subjects = _local_subjects(url, token, pid)
        quick = {name: subjects[name] for name in (OURS_ASYNC, THEIRS_ASYNC)}
        rows += _cost_rows(n, 0.0, _measure_all(quick, n, 1 if fast else repeats + 2))
    rows.append(_environment_row())
    results = _measure_all(_transport_subjects(LATENCY), n, repeats)
    rows += _rows(
        f"via in-process transport (no HTTP, {LATENCY * 1000:.0f} ms/request)", n, LATENCY, results
    )
    return rows


def _cost_rows(n: int, latency: float, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's rows on the client's own cost: ``AsyncSession`` against the ideal (at a
    latency) and its CPU per request and time against canfar's ``AsyncSession``."""
    bench = f"client cost N={n} via local platform (HTTP, +{latency * 1000:.0f} ms/request)"
    ours, theirs = results.get(OURS_ASYNC), results.get(THEIRS_ASYNC)
    if not isinstance(ours, dict) or not isinstance(theirs, dict):
        return [
            _row(
                bench, "AsyncSession: ours / canfar's", "n/a", "x", "", "a subject failed: no ratio"
            )
        ]
    per_request = len(PHASES) * n
    rows = []
    if latency > 0:
        ideal = math.ceil(n / CONCURRENCY) * latency * len(PHASES)
        value = ours["total"] / ideal
        rows.append(
            _row(
                bench,
                "canfar_widgets.AsyncSession time / ideal",
                value,
                "x",
                "<= 1.2",
                f"{_verdict(value, '<=', 1.2)}; {ours['total']:.3g} s against "
                f"{ideal:.3g} s; median of {ours['runs']} ({ours['spread']:.0%} spread)",
            )
        )
    cpu = ours["cpu"] / theirs["cpu"]
    rows.append(
        _row(
            bench,
            "client CPU per request: canfar_widgets.AsyncSession / canfar's",
            cpu,
            "x",
            "<= 1",
            f"{_verdict(cpu, '<=', 1)}; {ours['cpu'] / per_request * 1000:.2g} "
            f"against {theirs['cpu'] / per_request * 1000:.2g} ms/request (whole client "
            "process, create + info + destroy)",
        )
    )
    time_ratio = ours["total"] / theirs["total"]
    target = "<= 1" if latency == 0 else ""
    note = (f"{_verdict(time_ratio, '<=', 1)}; " if target else "context; ") + (
        f"{ours['total']:.3g} s against {theirs['total']:.3g} s; spread "
        f"{ours['spread']:.0%} / {theirs['spread']:.0%}"
    )
    rows.append(
        _row(bench, "time: canfar_widgets.AsyncSession / canfar's", time_ratio, "x", target, note)
    )
    return rows


def _environment_row() -> dict[str, Any]:
    """Whether ``sniffio`` is importable: without it httpcore 1.0 retries the failed import
    on every lock it sets up (several per request), a cost our httpx client pays and the
    official client's httpx2 does not (docs/performance.md)."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        httpcore = version("httpcore")
    except PackageNotFoundError:
        httpcore = "not installed"
    present = find_spec("sniffio") is not None
    return _row(
        "fanout environment",
        "sniffio importable",
        "yes" if present else "no",
        "",
        "",
        f"httpcore {httpcore}; when absent, httpcore re-runs a failing `import sniffio` "
        "per lock set up (several per request)",
    )


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
