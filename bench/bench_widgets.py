"""Widget refresh: kernel CPU and bytes sent per SessionTable refresh at 10 to 5,000 sessions,
the idle Dashboard's request rate and the bytes of a PlatformLoad update.

Targets (widgets issue; issue 16): with 1,000 sessions a refresh with nothing changed costs
<= 10 ms in the kernel (<= 30 ms at 5,000) and sends nothing; one status change sends
<= 2 KB. The same targets are shown at 10 and 100 sessions. An idle Dashboard makes
<= 2 requests a minute after a few unchanged polls; a PlatformLoad update sends one
sample, not its history.

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
* **bytes**: ``measure_traffic(table)`` (``canfar_widgets.widgets._traffic``): the JSON
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
from canfar_widgets.widgets._traffic import measure_traffic
from canfar_widgets.widgets.session_table import SessionTable

SIZES = (10, 100, 1000)
FULL_SIZES = (*SIZES, 5000)
CPU_TARGET_MS = 10.0
CPU_TARGET_MS_5000 = 30.0
IDLE_TARGET_PER_MINUTE = 2.0
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
    source = table.source
    samples = []
    for _ in range(repeats):
        raw = json.loads(body)  # fresh dicts, as every poll gets
        started = time.thread_time()
        records = source._cached_records(raw)
        table._on_feed(records, None)
        samples.append(time.thread_time() - started)
    return statistics.median(samples)


def bench_size(n: int, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    name = f"widget refresh sessions={n}"
    with LocalPlatform(
        metrics_interval=0, headless_start_delay=0.0, terminating_delay=3600.0
    ) as platform:
        ids = platform.preload(n, kind="headless", status="Running", name="bench")
        session = AsyncSession(url=platform.url, token=platform.token)
        table = SessionTable(session=session)
        # A view is on screen: the table sends row patches only once a view asked for rows.
        table._dispatch_message(table, {"kind": "snapshot", "have": 0}, [])
        api = httpx.Client(
            base_url=platform.url + "/",
            timeout=30,
            headers={"Authorization": f"Bearer {platform.token}"},
        )
        try:
            table.refresh().result(30)
            if len(table.records) != n:
                raise RuntimeError(f"the table holds {len(table.records)} sessions, expected {n}")
            for _ in range(3):  # warm: connection, record cache, code paths
                _refresh(table)

            quiet = [_refresh(table) for _ in range(repeats)]
            quiet_cpu = statistics.median(q[0] for q in quiet) * 1000
            target = CPU_TARGET_MS_5000 if n > 1000 else CPU_TARGET_MS
            quiet_bytes = max(q[1] for q in quiet)
            body = api.get("session").text
            diff_ms = _diff_cpu(table, body, repeats) * 1000
            rows.append(
                _row(
                    name,
                    "nothing changed: kernel CPU per refresh",
                    round(quiet_cpu, 2),
                    "ms",
                    f"<= {target:g}",
                    f"{verdict(quiet_cpu, '<=', target)}; poll + diff on the "
                    f"runner thread, median of {repeats}; an unchanged body skips decode and diff "
                    f"(a changed one pays record cache + diff after decoding: {diff_ms:.2g} ms); "
                    f"list is {len(body) / 1000:.0f} kB of JSON",
                )
            )
            rows.append(
                _row(
                    name,
                    "nothing changed: bytes sent per refresh",
                    quiet_bytes,
                    "B",
                    "== 0",
                    f"{verdict(quiet_bytes, '==', 0)}; largest of {repeats}",
                )
            )

            changes = min(repeats, n)
            changed = []
            for key in ids[:changes]:
                api.delete(f"session/{key}").raise_for_status()  # Running -> Terminating
                cpu, sent, custom = _refresh(table)
                patches = [m for m in custom if m.get("kind") == "patch"]
                # Terminating (upserted) or, on a platform that drops deleted records at
                # once (the local one now does for preloaded records), removed: one change.
                touched = (
                    [r["id"] for r in patches[0]["upsert"]] + patches[0]["remove"]
                    if patches
                    else []
                )
                if len(patches) != 1 or touched != [key]:
                    raise RuntimeError(f"expected one patch upserting {key}, got {custom!r:.200}")
                changed.append((cpu, sent))
            change_cpu = statistics.median(c[0] for c in changed) * 1000
            change_bytes = max(c[1] for c in changed)
            rows.append(
                _row(
                    name,
                    "one status change: kernel CPU per refresh",
                    round(change_cpu, 2),
                    "ms",
                    "",
                    f"median of {changes}",
                )
            )
            rows.append(
                _row(
                    name,
                    "one status change: bytes sent per refresh",
                    change_bytes,
                    "B",
                    f"<= {CHANGE_TARGET_BYTES}",
                    f"{verdict(change_bytes, '<=', CHANGE_TARGET_BYTES)}; one patch "
                    f"(1 row) + last_updated; largest of {changes}",
                )
            )

            with measure_traffic(table) as meter:  # what a newly opened view is sent
                table._dispatch_message(table, {"kind": "snapshot", "have": 0}, [])
            rows.append(
                _row(
                    name,
                    "a view opens: snapshot bytes",
                    meter.bytes,
                    "B",
                    "",
                    "context: the full rows trait, sent once per new view",
                )
            )
        finally:
            api.close()
            table.close()
            with contextlib.suppress(Exception):
                get_runner().run(session.aclose(), timeout=10)
    return rows


def bench_idle_dashboard(n: int = 100) -> list[dict[str, Any]]:
    """An idle Dashboard: its pollers' steady rate once a few polls brought nothing new.

    Every view is reported visible (as on screen), then each poller makes four polls
    exactly as its loop makes them (``_poll_once``, one request each); the rate is what the
    pollers' intervals then are (60 / interval each), i.e. what every following minute
    costs. No timers are waited for.
    """
    from canfar_widgets.widgets.dashboard import Dashboard

    with LocalPlatform(metrics_interval=0) as platform:
        platform.preload(n, kind="notebook", status="Running", name="idle")
        session = AsyncSession(url=platform.url, token=platform.token)
        dash = Dashboard(session)
        runner = get_runner()
        try:
            dash.table.refresh().result(30)
            dash.load.refresh().result(30)
            for widget in (dash.form, dash.load, dash.table):
                widget._dispatch_message(
                    widget, {"kind": "visibility", "visible": True, "view": "b"}, []
                )
            pollers = [dash.source.feed, dash.load.poller]
            before = sum(p.polls for p in pollers)
            for _ in range(4):
                for poller in pollers:
                    runner.run(poller._poll_once(runner.loop))
            made = sum(p.polls for p in pollers) - before
            rate = sum(60.0 / p.interval() for p in pollers)
            intervals = ", ".join(f"{p.name} every {p.interval():g} s" for p in pollers)
            dash.frame._dispatch_message(dash.frame, {"kind": "activity"}, [])
            after_focus = sum(60.0 / p.interval() for p in pollers)
        finally:
            dash.close()
            with contextlib.suppress(Exception):
                runner.run(session.aclose(), timeout=10)
    name = f"idle Dashboard sessions={n}"
    return [
        _row(
            name,
            "requests per minute after 4 unchanged polls",
            round(rate, 2),
            "/min",
            f"<= {IDLE_TARGET_PER_MINUTE:g}",
            f"{verdict(rate, '<=', IDLE_TARGET_PER_MINUTE)}; {intervals}; the 4 polls made "
            f"{made} requests (one per poll); was 6/min (15 s + 30 s, forever)",
        ),
        _row(
            name,
            "requests per minute right after window focus",
            round(after_focus, 2),
            "/min",
            "",
            "context: back to the slow intervals at once (and a poll now if the list is old)",
        ),
    ]


def bench_platform_load(samples: int = 60) -> list[dict[str, Any]]:
    """Bytes a PlatformLoad sends per new sample with a full history, against one sample."""
    from canfar_widgets.widgets.platform_load import PlatformLoad

    with LocalPlatform(metrics_interval=0) as platform:
        session = AsyncSession(url=platform.url, token=platform.token)
        load = PlatformLoad(session, history_size=samples)
        try:
            load.refresh().result(30)
            for _ in range(samples):
                load.refresh().result(30)
            with measure_traffic(load) as meter:
                load.refresh().result(30)
            message = next(m for m in meter.custom() if m.get("kind") == "sample")
            one = len(json.dumps(message["sample"]))
            history = len(json.dumps(load.history))
            with measure_traffic(load) as opened:
                load._dispatch_message(load, {"kind": "history"}, [])
        finally:
            load.close()
            with contextlib.suppress(Exception):
                get_runner().run(session.aclose(), timeout=10)
    name = f"PlatformLoad update history={samples}"
    sample_bytes = len(json.dumps(message))
    return [
        _row(
            name,
            "sample bytes sent per update / one sample",
            round(sample_bytes / one, 2),
            "x",
            "",
            f"{sample_bytes} B message for a {one} B sample; the whole history is {history} B "
            f"(was sent every sample: {history / one:.0f}x one sample)",
        ),
        _row(
            name,
            "all bytes sent per update",
            meter.bytes,
            "B",
            "",
            "the sample message + the changed traits (last_updated, status); the history never",
        ),
        _row(
            name,
            "a view opens: history bytes",
            opened.bytes,
            "B",
            "",
            "context: the whole history, sent once per new view",
        ),
    ]


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}`` for every size.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["unit"]
        'ms'
    """
    repeats = 5 if fast else 30
    rows: list[dict[str, Any]] = []
    for n in SIZES if fast else FULL_SIZES:
        rows += bench_size(n, repeats)
    rows += bench_idle_dashboard()
    rows += bench_platform_load()
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
