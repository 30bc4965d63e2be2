"""Widget refresh: kernel CPU and bytes sent per SessionTable refresh at 10, 100, 1,000 sessions.

Targets (widgets issue): with 1,000 sessions a refresh with nothing changed costs <= 10 ms
in the kernel and sends nothing; one status change sends <= 2 KB. The same targets are
shown at 10 and 100 sessions.

Setup: a ``LocalPlatform`` (in this process, no latency) with N preloaded Running headless
sessions (``platform.preload``, records only, no processes); this project's
``AsyncSession`` on it; one ``SessionTable`` on that session, as in a notebook. The table
has no view, so its feed does not poll by itself: each refresh is one
``table.refresh()`` (= one poll of the shared feed), waited for.

* **kernel CPU**: CPU time of the runner thread (where every poll runs: the HTTP request
  through httpx, JSON decoding, the record cache, the table's diff, the patch) read with
  ``time.thread_time()`` on that thread just before and just after the refresh. The
  platform's own thread, serving the request in this process, is not counted: it stands
  for the remote server. The kernel's main thread does nothing for a poll. Also shown:
  the "diff" part alone (record cache + table diff on an already decoded list, timed on
  this thread), i.e. what a refresh costs beyond fetching the list.
* **bytes**: ``measure_traffic(table)`` (``canfar_widgets.widgets._base``): the JSON
  content and buffers of every comm message the table sends (trait updates and custom
  messages) during the refresh.
* **one status change**: before each such refresh one session is deleted through the
  API (Running -> Terminating; ``terminating_delay`` is long so it stays listed).

Medians over repeats; bytes are the largest seen. ``python bench/bench_widgets.py [--fast]``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict
from canfar_widgets.local import LocalPlatform
from canfar_widgets.runner import get_runner
from canfar_widgets.sessions import AsyncSession
from canfar_widgets.widgets._base import measure_traffic
from canfar_widgets.widgets.table import SessionTable

SIZES = (10, 100, 1000)
CPU_TARGET_MS = 10.0
CHANGE_TARGET_BYTES = 2048


async def _runner_cpu() -> float:
    return time.thread_time()


def _refresh(table: SessionTable) -> tuple[float, int, list[Any]]:
    """One refresh: (runner-thread CPU seconds, bytes sent, custom messages sent)."""
    runner = get_runner()
    with measure_traffic(table) as meter:
        before = runner.run(_runner_cpu())
        table.refresh().result(30)
        after = runner.run(_runner_cpu())
    return after - before, meter.bytes, meter.custom()


def _diff_cpu(table: SessionTable, body: str, repeats: int) -> float:
    """Median CPU seconds of record cache + table diff for an already decoded list."""
    backend = table.backend
    samples = []
    for _ in range(repeats):
        raw = json.loads(body)  # fresh dicts, as every poll gets
        started = time.thread_time()
        records = backend._cached_records(raw)
        table._on_feed(records, None)
        samples.append(time.thread_time() - started)
    return statistics.median(samples)


def bench_size(n: int, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    name = f"widget refresh sessions={n}"
    with LocalPlatform(metrics_interval=0, headless_start_delay=0.0, terminating_delay=3600.0) as platform:
        ids = platform.preload(n, kind="headless", status="Running", name="bench")
        session = AsyncSession(url=platform.url, token=platform.token)
        table = SessionTable(session=session)
        api = httpx.Client(base_url=platform.url + "/", timeout=30,
                           headers={"Authorization": f"Bearer {platform.token}"})
        try:
            table.refresh().result(30)
            if len(table.records) != n:
                raise RuntimeError(f"the table holds {len(table.records)} sessions, expected {n}")
            for _ in range(3):  # warm: connection, record cache, code paths
                _refresh(table)

            quiet = [_refresh(table) for _ in range(repeats)]
            quiet_cpu = statistics.median(q[0] for q in quiet) * 1000
            quiet_bytes = max(q[1] for q in quiet)
            body = api.get("session").text
            diff_ms = _diff_cpu(table, body, repeats) * 1000
            rows.append(_row(name, "nothing changed: kernel CPU per refresh", round(quiet_cpu, 2), "ms",
                             f"<= {CPU_TARGET_MS:g}",
                             f"{verdict(quiet_cpu, '<=', CPU_TARGET_MS)}; poll + diff on the "
                             f"runner thread, median of {repeats}; of which diff alone {diff_ms:.2g} ms; "
                             f"list is {len(body) / 1000:.0f} kB of JSON"))
            rows.append(_row(name, "nothing changed: bytes sent per refresh", quiet_bytes, "B", "== 0",
                             f"{verdict(quiet_bytes, '==', 0)}; largest of {repeats}"))

            changes = min(repeats, n)
            changed = []
            for key in ids[:changes]:
                api.delete(f"session/{key}").raise_for_status()  # Running -> Terminating
                cpu, sent, custom = _refresh(table)
                patches = [m for m in custom if m.get("kind") == "patch"]
                if len(patches) != 1 or [r["id"] for r in patches[0]["upsert"]] != [key]:
                    raise RuntimeError(f"expected one patch upserting {key}, got {custom!r:.200}")
                changed.append((cpu, sent))
            change_cpu = statistics.median(c[0] for c in changed) * 1000
            change_bytes = max(c[1] for c in changed)
            rows.append(_row(name, "one status change: kernel CPU per refresh", round(change_cpu, 2), "ms",
                             "", f"median of {changes}"))
            rows.append(_row(name, "one status change: bytes sent per refresh", change_bytes, "B",
                             f"<= {CHANGE_TARGET_BYTES}",
                             f"{verdict(change_bytes, '<=', CHANGE_TARGET_BYTES)}; one patch "
                             f"(1 row) + last_updated; largest of {changes}"))

            with measure_traffic(table) as meter:  # what a newly opened view is sent
                table._dispatch_message(table, {"kind": "snapshot", "have": 0}, [])
            rows.append(_row(name, "a view opens: snapshot bytes", meter.bytes, "B", "",
                             "context: the full rows trait, sent once per new view"))
        finally:
            api.close()
            table.close()
            with contextlib.suppress(Exception):
                get_runner().run(session.aclose(), timeout=10)
    return rows


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}`` for every size.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["unit"]
        'ms'
    """
    repeats = 5 if fast else 30
    rows: list[dict[str, Any]] = []
    for n in SIZES:
        rows += bench_size(n, repeats)
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
