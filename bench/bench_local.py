"""The local platform under load: listing 1,000 sessions, and a burst of concurrent creates.

* list: ``GET /skaha/v1/session`` with 1,000 sessions, median and p95 over repeats, measured
  end to end with httpx (request, server, transfer, ``response.json()``). The 1,000 records
  are preloaded finished headless sessions (``LocalPlatform.preload``): creating 1,000 real
  ones would spend the time on 1,000 processes, and interactive ones are capped at 5 per
  user, as on the real platform. Target: median <= 20 ms.
* burst: N concurrent ``POST /session`` of a quick headless job (``cmd=true``) from one
  ``httpx.AsyncClient`` over 32 connections (N = 200, fast: 50); then every returned id must
  be listed and reach ``Completed``. Targets: none lost; wall time reported (it is mostly
  client time: the server spends well under a millisecond per request).

    python bench/bench_local.py [--fast]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict
from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.platform import LISTEN_BACKLOG

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bench_list(platform: LocalPlatform, sessions: int, repeats: int) -> list[dict[str, Any]]:
    platform.preload(sessions)
    samples = []
    with httpx.Client(
        base_url=platform.url + "/", headers={"Authorization": f"Bearer {platform.token}"}
    ) as client:
        for _ in range(3):  # warm the connection and the record caches
            client.get("session").raise_for_status()
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get("session")
            records = response.json()
            samples.append(time.perf_counter() - started)
            assert len(records) == sessions, len(records)
        size = len(response.content)
    samples.sort()
    median = statistics.median(samples) * 1000
    p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))] * 1000
    name = f"local list sessions={sessions}"
    return [
        _row(
            name,
            "median",
            round(median, 2),
            "ms",
            "<= 20",
            f"{verdict(median, '<=', 20)}; {repeats} requests, {size / 1e6:.2f} MB",
        ),
        _row(name, "p95", round(p95, 2), "ms", "", f"{repeats} requests"),
    ]


async def _burst(platform: LocalPlatform, n: int) -> tuple[list[str], float, float, int]:
    # 32 connections, like the clients' default concurrency: what a real burst looks like
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(
        base_url=platform.url + "/",
        limits=limits,
        timeout=60,
        headers={"Authorization": f"Bearer {platform.token}"},
    ) as client:

        async def one(i: int) -> str | None:
            params = {"name": f"burst-{i}", "image": TERMINAL, "cmd": "true"}
            response = await client.post("session", params=params, headers=FORM)
            return response.text.strip() if response.status_code == 200 else None

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(n)))
        created = time.perf_counter() - started
        ids = [a for a in answers if a]
        deadline = time.monotonic() + 120
        completed = 0
        while time.monotonic() < deadline:
            listed = (await client.get("session", params={"type": "headless"})).json()
            completed = sum(1 for r in listed if r["id"] in set(ids) and r["status"] == "Completed")
            if completed == len(ids):
                break
            await asyncio.sleep(0.05)
        done = time.perf_counter() - started
        listed_ids = {r["id"] for r in (await client.get("session")).json()}
        return ids, created, done, len(set(ids) & listed_ids)


def bench_burst(platform: LocalPlatform, n: int) -> list[dict[str, Any]]:
    ids, created, done, listed = asyncio.run(_burst(platform, n))
    name = f"local burst creates N={n}"
    lost = n - listed
    return [
        _row(name, "ids returned", len(ids), "sessions", f"== {n}", verdict(len(ids), "==", n)),
        _row(
            name, "lost (returned but not listed)", lost, "sessions", "== 0", verdict(lost, "==", 0)
        ),
        _row(name, "all POSTs answered", round(created, 3), "s", "", "wall time"),
        _row(name, "all Completed", round(done, 3), "s", "", "wall time, processes included"),
    ]


async def _stall_burst(platform: LocalPlatform, n: int) -> tuple[list[float], list[float]]:
    """N creates at once, each on its own new connection: N SYNs hit the listen queue together.

    Returns each request's TCP connect time (from httpcore's trace events) and total time.
    A connect completes in the kernel once the handshake is queued, however busy the server
    is; only a full listen queue (a dropped SYN, retransmitted after ~1 s) makes it slow.
    """
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(
        base_url=platform.url + "/",
        limits=limits,
        timeout=60,
        headers={"Authorization": f"Bearer {platform.token}"},
    ) as client:

        async def one(i: int) -> tuple[float, float]:
            marks: dict[str, float] = {}

            async def trace(event: str, info: dict[str, Any]) -> None:
                if event.startswith("connection.connect_tcp."):
                    marks[event.rsplit(".", 1)[1]] = time.perf_counter()

            started = time.perf_counter()
            params = {"name": f"stall-{i}", "image": TERMINAL, "cmd": "true"}
            response = await client.post(
                "session", params=params, headers=FORM, extensions={"trace": trace}
            )
            response.raise_for_status()
            connect = marks.get("complete", started) - marks.get("started", started)
            return connect, time.perf_counter() - started

        pairs = await asyncio.gather(*(one(i) for i in range(n)))
        return [p[0] for p in pairs], [p[1] for p in pairs]


# A SYN dropped on a full listen queue is retransmitted after ~1 s: a connect this slow
# waited on the backlog (a loopback connect otherwise takes well under a millisecond, plus
# however long this busy event loop takes to resume the connecting task).
STALL = 0.95


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped on a full listen queue (TcpExt
    ListenOverflows in /proc/net/netstat, this network namespace); None off Linux."""
    try:
        lines = [
            line.split()
            for line in Path("/proc/net/netstat").read_text().splitlines()
            if line.startswith("TcpExt:")
        ]
        return int(dict(zip(lines[0][1:], lines[1][1:], strict=True))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def bench_stall(platform: LocalPlatform, n: int) -> list[dict[str, Any]]:
    before = listen_overflows()
    connects, totals = asyncio.run(_stall_burst(platform, n))
    after = listen_overflows()
    stalled = sum(1 for t in connects if t >= STALL)
    name = f"local burst creates N={n}, one connection each"
    dropped = "n/a" if before is None or after is None else after - before
    return [
        _row(
            name,
            f"connects that stalled (>= {STALL:g} s)",
            stalled,
            "requests",
            "== 0",
            f"{verdict(stalled, '==', 0)}; listen backlog {LISTEN_BACKLOG}; {n} connections "
            f"opened at once; slowest connect {max(connects) * 1000:.0f} ms, median "
            f"{statistics.median(connects) * 1000:.1f} ms",
        ),
        _row(
            name,
            "SYNs dropped on a full listen queue",
            dropped,
            "connections",
            "== 0",
            (verdict(dropped, "==", 0) + "; " if isinstance(dropped, int) else "")
            + "kernel counter TcpExt ListenOverflows, before and after the burst (counts the "
            "whole network namespace)",
        ),
        _row(
            name,
            "all answered",
            round(max(totals), 3),
            "s",
            "",
            f"wall time; median request {statistics.median(totals) * 1000:.0f} ms (server "
            "and client share this process and its 2 cores)",
        ),
    ]


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Both benchmarks on fresh platforms; rows ``{benchmark, subject, value, unit, target, note}``.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["unit"]
        'ms'
    """
    rows: list[dict[str, Any]] = []
    with LocalPlatform(metrics_interval=0, headless_start_delay=0.0) as platform:
        rows += bench_list(platform, 1000, 20 if fast else 100)
    with LocalPlatform(metrics_interval=0, headless_start_delay=0.0) as platform:
        rows += bench_burst(platform, 50 if fast else 200)
    with LocalPlatform(metrics_interval=0, headless_start_delay=0.0) as platform:
        rows += bench_stall(platform, 200)
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
