"""BatchView with 1,000 replicas: first render, one poll's update, and what travels.

* first render: the ``rows`` snapshot of 1,000 replicas (render() to the first rows painted,
  and to every row in the DOM);
* update: one ``{kind: "patch"}`` message with the 3 replicas a poll changed (message in to
  the frame with them painted), the rest of the table untouched;
* bytes: that patch as JSON vs the full snapshot (what a widget that resent its rows
  every poll would send).

Method: as :mod:`bench.bench_browser` (its harness page, fake anywidget model and module
loading, which are the project's way of timing a view without a kernel in the loop). The
rows are made by ``canfar_widgets.widgets.batch_view._row`` from real
:class:`~canfar_widgets.batches.Replica` objects (a batch of 1,000: 700 Completed, 50
Failed with reasons, 250 Running), exactly what the kernel sends. Medians over fresh pages.

Fast mode: 100 replicas. ``python bench/bench_batch_view.py [--fast]``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict
from bench.bench_browser import CHROMIUM, CHROMIUM_ARGS, Page, _defaults

FIRST_TARGET_MS = 300.0
UPDATE_TARGET_MS = 50.0
CHANGED = 3

COUNT_ROWS = "() => window.bench.el.querySelectorAll('tbody tr[data-id]').length"
STATUS_OF = "(id) => window.bench.el.querySelector(`tbody tr[data-id='${id}']`).dataset.status"


def replicas(n: int) -> list[Any]:
    from canfar_widgets.batches import Replica

    now = time.time()
    out = []
    for number in range(1, n + 1):
        started = datetime.fromtimestamp(now - 600 + number % 60, timezone.utc)
        if number % 20 == 0:
            status, reason = "Failed", "non-zero exit (exit code 1)"
        elif number <= n * 0.7:
            status, reason = "Completed", ""
        else:
            status, reason = "Running", ""
        ended = datetime.fromtimestamp(now - 30, timezone.utc) if status != "Running" else None
        out.append(
            Replica(
                replica=number,
                id=f"s{number:07d}",
                name=f"scan-{number}",
                status=status,
                attempt=1,
                started=started,
                ended=ended,
                duration=None,
                reason=reason,
                earlier_ids=(),
            )
        )
    return out


def state(n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from canfar_widgets.widgets.batch_view import BatchView, _row

    rows = [_row(r, "ValueError: bad frame" if r.status == "Failed" else "") for r in replicas(n)]
    traits = _defaults(BatchView)
    traits.update(
        rows=rows,
        rows_version=1,
        name="scan",
        total=n,
        done=int(n * 0.75),
        counts={"Completed": int(n * 0.7), "Failed": n // 20, "Running": n - int(n * 0.75)},
        started_at=time.time() - 600,
        eta_at=time.time() + 300,
    )
    return traits, rows


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}``."""
    n, samples = (100, 3) if fast else (1_000, 9)
    name = f"browser BatchView replicas={n}"
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"CI=true but {CHROMIUM} is missing (apt-get install chromium)")
        return [
            _row(name, subject, "n/a", "ms", "", f"{CHROMIUM} is missing")
            for subject in ("first render", "update")
        ]
    from playwright.sync_api import sync_playwright

    traits, rows = state(n)
    changed = [
        dict(r, status="Completed", ended=time.time()) for r in rows if r["status"] == "Running"
    ][:CHANGED]
    patch = {"kind": "patch", "version": 2, "upsert": changed, "remove": []}
    firsts, everys, updates = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            version = browser.version
            for _ in range(samples):
                page = Page(browser, "batch_view")
                try:
                    first, every = page.page.evaluate(
                        "([s, n]) => window.bench.renderAllRows(s, n)", [traits, n]
                    )
                    firsts.append(first)
                    everys.append(every)
                    if page.page.evaluate(COUNT_ROWS) != n:
                        raise RuntimeError("BatchView did not show every replica")
                    updates.append(page.deliver(patch))
                    if page.page.evaluate(STATUS_OF, changed[0]["id"]) != "Completed":
                        raise RuntimeError("the patch did not reach its row")
                finally:
                    page.close()
        finally:
            browser.close()
    first, update = statistics.median(firsts), statistics.median(updates)
    patch_bytes = len(json.dumps(patch))
    snapshot_bytes = len(json.dumps(rows))
    tail = f"; Chromium {version} headless"
    return [
        _row(
            name,
            "first render (render() to the first rows painted)",
            round(first, 1),
            "ms",
            f"<= {FIRST_TARGET_MS:g}",
            f"{verdict(first, '<=', FIRST_TARGET_MS)}; median of "
            f"{samples} pages (min {min(firsts):.0f}, max {max(firsts):.0f}); the first 60 rows "
            f"paint at once, the rest in chunks of 250 per frame{tail}",
        ),
        _row(
            name,
            "every row in the DOM (render() to the last chunk painted)",
            round(statistics.median(everys), 1),
            "ms",
            "",
            f"median of {samples} pages; all {n} rows checked in the DOM{tail}",
        ),
        _row(
            name,
            f"update: a poll changed {CHANGED} replicas (patch in to painted)",
            round(update, 1),
            "ms",
            f"<= {UPDATE_TARGET_MS:g}",
            f"{verdict(update, '<=', UPDATE_TARGET_MS)}; median of {samples}; includes two "
            f"animation frames{tail}",
        ),
        _row(
            name,
            f"bytes sent for that poll (patch of {CHANGED} rows vs all rows)",
            patch_bytes,
            "B",
            "",
            f"the full snapshot is {snapshot_bytes:,} B ({snapshot_bytes / patch_bytes:.0f}x)",
        ),
    ]


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
