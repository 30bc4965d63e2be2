"""Batch refresh cost: requests and milliseconds in the kernel for 10, 100 and 1,000 replicas.

A batch of N Running replicas (``LocalPlatform.preload``, in a child process so its request
handling does not take this process's CPU; one platform per N, so the listing holds exactly
the batch's sessions) is opened from the platform once, then
``batch.refresh()`` is timed: wall milliseconds, CPU milliseconds of this process (the
kernel's side: the listing's JSON, matching records, the SQLite record), and the HTTP
requests it sent, counted by the client's transport. The target is the issue's: one list
request per poll, whatever N.

Run ``python bench/bench_batches.py [--fast]`` for a table; ``run(fast=True)`` returns rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict as _verdict

_CHILD = """
import os, sys
from canfar_widgets.local import LocalPlatform
platform = LocalPlatform(token=os.environ["BENCH_PLATFORM_TOKEN"], metrics_interval=0)
platform.start()
for size in sys.argv[1:]:
    platform.preload(int(size), status="Running", name=f"refresh{size}")
print(platform.url, flush=True)
sys.stdin.read()   # serve until the parent closes our stdin
platform.stop()
"""


class CountingTransport(httpx.AsyncHTTPTransport):
    """The ordinary transport, counting the requests that go through it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


@contextlib.contextmanager
def _platform(sizes: list[int]) -> Iterator[tuple[str, str]]:
    token = secrets.token_urlsafe(16)
    env = {**os.environ, "BENCH_PLATFORM_TOKEN": token}
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, *map(str, sizes)],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        try:
            url = child.stdout.readline().strip()
            if not url:
                raise RuntimeError("the local platform did not start")
            yield url, token
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()


@contextlib.contextmanager
def _record() -> Iterator[Path]:
    """A throw-away batch record (never the user's)."""
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as folder:
        path = Path(folder) / "batches.sqlite"
        before = os.environ.get("CANFAR_WIDGETS_BATCH_DB")
        os.environ["CANFAR_WIDGETS_BATCH_DB"] = str(path)
        try:
            yield path
        finally:
            if before is None:
                os.environ.pop("CANFAR_WIDGETS_BATCH_DB", None)
            else:
                os.environ["CANFAR_WIDGETS_BATCH_DB"] = before


def _measure(url: str, token: str, size: int, repeats: int) -> list[dict[str, Any]]:
    from canfar_widgets.batches import Batch
    from canfar_widgets.sessions import Session

    transport = CountingTransport()
    with Session(url=url, token=token, transport=transport) as session:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "rebuilt from the platform": expected here
            batch = Batch.open(f"refresh{size}", session=session)
        assert batch.counts == {"Running": size}, batch.counts
        batch.refresh()  # warm: connection open, record written once
        walls, cpus, requests = [], [], []
        for _ in range(repeats):
            sent = transport.requests
            wall, cpu = time.perf_counter(), time.process_time()
            batch.refresh()
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            requests.append(transport.requests - sent)
    # The caller owns a transport it hands in: close it (on the runner, where it was used).
    from canfar_widgets.runner import get_runner

    get_runner().run(transport.aclose())
    label = f"batch refresh N={size} (local platform, HTTP)"
    most = max(requests)
    return [
        _row(
            label,
            "requests per refresh",
            most,
            "requests",
            "== 1",
            f"{_verdict(most, '==', 1)}; max over {repeats} refreshes",
        ),
        _row(
            label,
            "refresh, wall",
            statistics.median(walls),
            "ms",
            "",
            f"median of {repeats} (min {min(walls):.1f}, max {max(walls):.1f})",
        ),
        _row(
            label,
            "refresh, CPU in the kernel",
            statistics.median(cpus),
            "ms",
            "",
            f"median of {repeats}; this process only (client, JSON, SQLite record)",
        ),
    ]


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}`` for 10, 100 and 1,000 replicas.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["subject"], rows[0]["value"]
        ('requests per refresh', 1)
    """
    sizes = [10, 100, 1000]
    repeats = 5 if fast else 25
    rows: list[dict[str, Any]] = []
    with _record():
        for size in sizes:
            # A platform per size: its listing holds this batch's N sessions and nothing else.
            with _platform([size]) as (url, token):
                rows += _measure(url, token, size, repeats)
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
