"""Long logs: LogViewer follow mode, the local platform's log read, the client's ``logs()``.

* follow: a real headless job on an in-process ``LocalPlatform`` writes 12.6 MB (fast:
  1.26 MB) of 100-byte lines over 20 s (fast: 4 s) at an even rate; a ``LogViewer`` follows
  it with a view reported visible, from the job's start until it has stopped following.
  Measured in the same run:

  - bytes read from the server: the sum of every ``?view=logs`` answer the viewer's polls
    got (the API has no offset: each poll reads the whole log), over the final log size.
    Target <= 3x;
  - bytes to the browser: every comm message the widget sent (``_send`` counted as JSON,
    trait updates and ``{kind: "append"}`` messages alike), over the new text (the final
    log). Target <= 1.2x;
  - kernel memory: ``tracemalloc`` over the run (the platform runs in this process too,
    so its streaming buffers count against us); "retained" is what is still allocated
    after the viewer stopped (gc run), "peak" the highest point (one poll's answer is then
    alive as bytes and as text). Over the log size. Target <= 2x;
  - browser: the append messages the widget sent, replayed in the same order in Chromium
    (the harness of ``bench_browser.py``: the view's real module, a fake model) on top of
    the view's first text, 1 s apart (the messages are put into the page beforehand); the
    longest gap between animation frames from the first message until 1 s after the last.
    Target: no gap > 100 ms.

  The platform's log rotation is turned off for this run (``Job.log_max_bytes = 0``): with
  the kubelet's 10 MiB rotation the server would serve only the last file.
* platform read: a job writes 200 MB (fast: 20 MB); two clients stream ``?view=logs`` at
  once and discard the bytes; ``tracemalloc`` peak (platform and clients in this process)
  per reader, over the log. Target <= 0.1x.
* client logs(): ``Session.logs(id)`` of that log (cut at the client's 16 MiB cap), and of
  a 15 MB log (fast: 4 MB) just under the cap, kept whole; ``tracemalloc`` peak over the
  log. Target <= 1.5x.

    python bench/bench_logs.py [--fast]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import stat
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict
from canfar_widgets.local import LocalPlatform
from canfar_widgets.local.jobs import Job

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPLAY_GAP_MS = 1000  # between replayed appends (the kernel's polls were 2-8 s apart)

WRITER = """#!/usr/bin/env python3
import sys, time
total, seconds = {total}, {seconds}
line = ("%010d " + "x" * 88 + "\\n")
steps = int(seconds * 10)
per_step = total // 100 // steps
out = sys.stdout
start = time.monotonic()
n = 0
for step in range(steps):
    out.write("".join(line % (n + i) for i in range(per_step)))
    out.flush()
    n += per_step
    time.sleep(max(0.0, start + (step + 1) / 10 - time.monotonic()))
"""


def _script(folder: Path, total: int, seconds: float) -> str:
    path = folder / "writer.py"
    path.write_text(WRITER.format(total=total, seconds=seconds))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _platform(folder: Path) -> LocalPlatform:
    return LocalPlatform(
        start_delay=0.1,
        headless_start_delay=0.0,
        kill_grace=0.3,
        metrics_interval=0,
        arc=folder / "arc",
    ).start()


@contextlib.contextmanager
def _log_platform() -> Iterator[tuple[Path, LocalPlatform]]:
    """A started platform in a temporary folder, log rotation off (the whole log is served)."""
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        folder = Path(tmp)
        rotation = Job.log_max_bytes
        Job.log_max_bytes = 0
        platform = _platform(folder)
        try:
            yield folder, platform
        finally:
            Job.log_max_bytes = rotation
            platform.stop()


def _create(platform: LocalPlatform, cmd: str) -> str:
    with httpx.Client(
        base_url=platform.url + "/", headers={"Authorization": f"Bearer {platform.token}"}
    ) as http:
        r = http.post(
            "session", params={"name": "long-log", "image": TERMINAL, "cmd": cmd}, headers=FORM
        )
        r.raise_for_status()
        return r.text.strip()


def _wait_finished(platform: LocalPlatform, sid: str, timeout: float) -> None:
    with httpx.Client(
        base_url=platform.url + "/", headers={"Authorization": f"Bearer {platform.token}"}
    ) as http:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http.get(f"session/{sid}").json().get("status") in ("Completed", "Failed"):
                return
            time.sleep(0.1)
    raise RuntimeError(f"session {sid} did not finish in {timeout} s")


# -- follow --------------------------------------------------------------------------------------


def bench_follow(total: int, seconds: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from canfar_widgets.widgets._source import SessionSource
    from canfar_widgets.widgets.log_viewer import LogViewer

    rows: list[dict[str, Any]] = []
    with _log_platform() as (folder, platform):
        session = platform.session()
        source = SessionSource.of(session)
        read = {"bytes": 0, "polls": 0}
        plain_logs = source.logs

        async def counting_logs(ids: Any) -> dict[str, str]:
            texts = await plain_logs(ids)
            read["bytes"] += sum(len(t.encode()) for t in texts.values())
            read["polls"] += 1
            return texts

        source.logs = counting_logs  # type: ignore[method-assign]
        sent = {"bytes": 0, "appends": 0, "append_bytes": 0, "updates": 0}
        # The appends are replayed in the browser later: kept on disk, so this bench's
        # own copy of them does not count as the widget's memory.
        replay = (folder / "appends.jsonl").open("w")
        first_text: dict[str, Any] = {}

        # Warm up (imports, the front-end module, the connection): not the log's cost.
        warm = LogViewer(_create(platform, "true"), session, follow=False)
        warm._initial.result(30)
        warm.close()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        sid = _create(platform, _script(folder, total, seconds))
        viewer = LogViewer(sid, session)

        def count(msg: dict[str, Any], buffers: Any = None) -> None:
            size = len(json.dumps(msg, separators=(",", ":")))
            sent["bytes"] += size
            content = msg.get("content") or {}
            if msg.get("method") == "custom" and content.get("kind") == "append":
                sent["appends"] += 1
                sent["append_bytes"] += size
                replay.write(json.dumps(content) + "\n")
            else:
                sent["updates"] += 1
                state = msg.get("state") or {}
                if "texts" in state and not first_text:
                    first_text.update(texts=state["texts"], ends=state.get("ends", {}))

        viewer._send = count
        viewer._dispatch_message(viewer, {"kind": "visibility", "visible": True, "view": "b"}, [])
        _wait_finished(platform, sid, seconds * 3 + 30)
        deadline = time.monotonic() + 120
        while viewer.following and time.monotonic() < deadline:
            time.sleep(0.05)
        if viewer.following:
            raise RuntimeError("the viewer kept following after the job finished")
        last = viewer._feeds[sid].value
        final = len(last.text) + last.dropped if last is not None else 0
        text_ok = viewer.text().endswith("x" * 88 + "\n")
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        retained = current - base
        peak -= base
        viewer.close()
        session.close()
        replay.close()
        appends = [json.loads(line) for line in (folder / "appends.jsonl").open()]
    if final != total or not text_ok:
        raise RuntimeError(f"the viewer saw {final} characters of a {total}-byte log")
    name = f"LogViewer follow, {total / 1e6:.3g} MB over {seconds:g} s"
    ratio_read = read["bytes"] / total
    ratio_sent = sent["bytes"] / total
    rows += [
        _row(
            name,
            "bytes read from the server / log",
            round(ratio_read, 2),
            "x",
            "<= 3",
            f"{verdict(ratio_read, '<=', 3)}; {read['polls']} polls, {read['bytes'] / 1e6:.1f} MB "
            f"(the interval grows with the log's size and growth)",
        ),
        _row(
            name,
            "bytes to the browser / new text",
            round(ratio_sent, 2),
            "x",
            "<= 1.2",
            f"{verdict(ratio_sent, '<=', 1.2)}; {sent['appends']} appends "
            f"({sent['append_bytes'] / 1e6:.1f} MB), {sent['updates']} trait updates "
            f"({(sent['bytes'] - sent['append_bytes']) / 1e6:.1f} MB)",
        ),
        _row(
            name,
            "kernel memory retained / log",
            round(retained / total, 2),
            "x",
            "<= 2",
            f"{verdict(retained / total, '<=', 2)}; {retained / 1e6:.1f} MB after the run "
            f"(cap {viewer.max_chars:,} characters)",
        ),
        _row(
            name,
            "kernel memory peak / log",
            round(peak / total, 2),
            "x",
            "",
            f"context: {peak / 1e6:.1f} MB at the highest point (the last poll's answer, as "
            "bytes and as text, beside the kept text and the messages being serialised)",
        ),
    ]
    return rows, {"first": first_text, "appends": appends, "sid": sid}


def bench_follow_browser(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    from bench import bench_browser as bb

    name = "LogViewer follow, browser"
    if not bb.CHROMIUM.exists():
        return [_row(name, "longest frame gap", "n/a", "ms", "<= 100", f"{bb.CHROMIUM} is missing")]
    from playwright.sync_api import sync_playwright

    from canfar_widgets.widgets.log_viewer import LogViewer

    sid = recorded["sid"]
    state = bb._defaults(LogViewer)
    first = recorded["first"] or {"texts": {sid: ""}, "ends": {sid: 1}}
    state.update(
        ids=[sid],
        selected=sid,
        follow=True,
        texts=first["texts"],
        ends=first["ends"],
        states={sid: "Running"},
        following=True,
        last_updated=1.0e9,
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(bb.CHROMIUM), args=bb.CHROMIUM_ARGS)
        try:
            page = bb.Page(browser, "log_viewer")
            page.render(state)
            # The messages go into the page first: handing a 2 MB string through Playwright is
            # the harness's cost, not the view's (Jupyter parses it from its websocket).
            page.page.evaluate("(list) => { window.appends = list; }", recorded["appends"])
            page.page.evaluate("""() => {
                window.gaps = {max: 0, last: performance.now(), on: true};
                const tick = (t) => { const g = window.gaps; g.max = Math.max(g.max, t - g.last);
                  g.last = t; if (g.on) requestAnimationFrame(tick); };
                requestAnimationFrame(tick);
            }""")
            for i in range(len(recorded["appends"])):
                page.page.evaluate("(i) => window.bench.model.deliver(window.appends[i])", i)
                page.page.wait_for_timeout(REPLAY_GAP_MS)
            gap = page.page.evaluate("() => { window.gaps.on = false; return window.gaps.max; }")
            seen = page.page.evaluate(bb.LOG_TEXT)
            resync = page.page.evaluate(
                "() => window.bench.model.sent.some((m) => m.kind === 'resync')"
            )
            page.close()
        finally:
            browser.close()
    appended = sum(len(c["text"]) for c in recorded["appends"])
    note = (
        f"{verdict(gap, '<=', 100)}; {len(recorded['appends'])} appends "
        f"({appended / 1e6:.1f} MB) replayed {REPLAY_GAP_MS} ms apart; {seen['lines']} lines in the DOM"
        + ("; the view asked for a resync" if resync else "")
    )
    return [
        _row(name, "longest frame gap while appends are built", round(gap, 1), "ms", "<= 100", note)
    ]


# -- platform read and client logs() ---------------------------------------------------------------


def bench_big_log(total: int, under_cap: int) -> list[dict[str, Any]]:
    """The platform's streamed read of a ``total``-byte log, then the client's ``logs()``.

    ``logs()`` runs on that log (cut at the client's 16 MiB cap) and on one of
    ``under_cap`` bytes, just under the cap, where the client keeps every byte.
    """
    rows = []
    with _log_platform() as (folder, platform):
        sid = _create(platform, _script(folder, total, 1.0))
        _wait_finished(platform, sid, 120)
        headers = {"Authorization": f"Bearer {platform.token}"}

        def read(_: int) -> int:
            received = 0
            with (
                httpx.Client(base_url=platform.url + "/", headers=headers, timeout=120) as http,
                http.stream("GET", f"session/{sid}", params={"view": "logs"}) as response,
            ):
                for chunk in response.iter_raw():
                    received += len(chunk)
            return received

        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        with concurrent.futures.ThreadPoolExecutor(2) as readers:
            received = list(readers.map(read, range(2)))
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        if received != [total, total]:
            raise RuntimeError(f"readers got {received} bytes of a {total}-byte log")
        per_reader = peak / 2 / total
        name = f"local platform, a {total / 1e6:.0f} MB log read"
        rows.append(
            _row(
                name,
                "server memory per concurrent reader / log",
                round(per_reader, 4),
                "x",
                "<= 0.1",
                f"{verdict(per_reader, '<=', 0.1)}; 2 concurrent streaming "
                f"readers, peak {peak / 1e6:.1f} MB in all (clients included)",
            )
        )
        rows.append(_client_logs(platform, sid, total))
        small = _create(platform, _script(folder, under_cap, 1.0))
        _wait_finished(platform, small, 120)
        rows.append(_client_logs(platform, small, under_cap))
    return rows


def _client_logs(platform: LocalPlatform, sid: str, total: int) -> dict[str, Any]:
    """``Session.logs(sid)`` of a ``total``-byte log: ``tracemalloc`` peak over the log."""
    from canfar_widgets.sessions import LOG_LIMIT

    session = platform.session()
    try:
        session.logs(sid)  # warm: connection, imports
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        texts = session.logs(sid)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        got = len(texts[sid])
        whole = texts[sid].endswith("x" * 88 + "\n")
        del texts
    finally:
        session.close()
    if total <= LOG_LIMIT and (got != total or not whole):
        raise RuntimeError(f"logs() gave {got} characters of a {total}-byte log")
    if total > LOG_LIMIT:
        name, kept = f"{total / 1e6:.0f} MB log", f"{got / 1e6:.1f} MB kept (the client's log cap)"
    else:
        share = f"{total / LOG_LIMIT:.0%} of the {LOG_LIMIT // 2**20} MiB cap"
        name, kept = f"{total / 1e6:.3g} MB log ({share})", "the whole log kept"
    return _row(
        f"client logs() of a {name}",
        "peak memory / log",
        round(peak / total, 3),
        "x",
        "<= 1.5",
        f"{verdict(peak / total, '<=', 1.5)}; peak {peak / 1e6:.1f} MB; {kept}; decoded "
        "while it streams in",
    )


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}``.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["unit"]
        'x'
    """
    follow_total, follow_seconds, big, under_cap = (
        (1_260_000, 4.0, 20_000_000, 4_000_000)
        if fast
        else (12_600_000, 20.0, 200_000_000, 15_000_000)
    )
    rows, recorded = bench_follow(follow_total, follow_seconds)
    try:
        rows += bench_follow_browser(recorded)
    except ImportError as exc:
        rows.append(
            _row("LogViewer follow, browser", "longest frame gap", "n/a", "ms", "<= 100", str(exc))
        )
    rows += bench_big_log(big, under_cap)
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
