"""Front-end render times in Chromium (Playwright), measured with ``performance.now()`` in the page.

* SessionTable, first render of 5,000 rows (target <= 500 ms at 900, 1280 and 1400 px wide,
  issue 16), with the DOM bounded by what is on screen (windowed rows), and the bytes the
  kernel sends for a first render against one snapshot of the rows (target <= 1.2x);
* LogViewer, first render of a 50,000-line log (target <= 500 ms), with the default
  ``max_lines`` (the last 5,000 lines go into the DOM, "Show all" reveals the rest) and,
  for context, with ``max_lines=0`` (all 50,000 lines in the DOM);
* LogViewer in follow mode: one ``{kind: "append"}`` message of 100 lines on top of the
  50,000-line log.

Method: a blank page (``page.set_content``) gets the widget's ES module exactly as anywidget
gets it (``load_esm(entry)``, helpers inlined) through a Blob URL and a dynamic
``import()``, the stylesheet from ``load_css()``, and a small fake anywidget model (an
``EventTarget`` with get/set/on/off/save_changes/send; custom messages arrive as the
``msg:custom`` event) holding the traits the view reads, as the kernel would have them:
the widget class's defaults plus the data. The module is imported before timing. The clock
runs from just before ``render()`` until two ``requestAnimationFrame`` callbacks later,
i.e. until the frame with the rows or lines has been laid out and painted; then the DOM is
checked for them. Each sample is a fresh page; medians over samples.

Table rows are the real ones: ``LocalPlatform.preload`` (4,000 Running headless + 1,000
Running notebook sessions), listed over HTTP, parsed into ``SessionRecord`` and turned into rows by
``canfar_widgets.widgets.session_table.row_of``, as the kernel sends them. The log is generated
(timestamped lines of ~34 characters, one in ten with ANSI colour) and sized to stay under the default
``max_chars`` cap (2,000,000 characters), so the kernel would send all of it.

The table's bytes are counted in the kernel (``canfar_widgets.widgets._traffic``): a real
``SessionTable`` on the local platform's 5,000 sessions polls, then a view renders and asks
for its snapshot, as when a cell shows the table; everything the widget sends from its
creation to that view's rows is divided by the JSON size of one snapshot (``rows``).

Fast mode: 1,000 rows, 5,000 lines, same code path. Chromium is Debian's ``/usr/bin/chromium``;
without it the rows say "n/a" (and the benchmark fails under CI, where it must exist).
``python bench/bench_browser.py [--fast]``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import row as _row
from bench._common import table as _table
from bench._common import verdict
from canfar_widgets.widgets._frontend import load_css, load_esm

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABLE_TARGET_MS = 500.0
TABLE_WIDTHS = (900, 1280, 1400)
TABLE_BYTES_TARGET = 1.2
LOG_TARGET_MS = 500.0
APPEND_LINES = 100
LOG_ID = "b7k2m9x4"

# The page: a fake anywidget model and the timing harness. Nothing here is widget-specific.
HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><style id="cw-css"></style></head>
<body style="margin:0"><div id="host" style="width:100%"></div>
<script>
class FakeModel extends EventTarget {
  constructor(state) {
    super();
    this.state = { ...state };
    this.sent = [];
    this.wrappers = new Map();
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    this.state[name] = value;
    this.dispatchEvent(new CustomEvent(`change:${name}`, { detail: [this, value] }));
  }
  on(name, callback) {
    const wrapper = (event) => callback(...(event.detail || []));
    if (!this.wrappers.has(callback)) this.wrappers.set(callback, new Map());
    this.wrappers.get(callback).set(name, wrapper);
    this.addEventListener(name, wrapper);
  }
  off(name, callback) {
    const byName = this.wrappers.get(callback);
    const wrapper = byName && byName.get(name);
    if (wrapper) { this.removeEventListener(name, wrapper); byName.delete(name); }
  }
  save_changes() {}
  send(content) { this.sent.push(content); }
  deliver(content) {  // a custom message from the kernel
    this.dispatchEvent(new CustomEvent("msg:custom", { detail: [content, []] }));
  }
}
const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
window.bench = {
  async load(source, css) {
    document.getElementById("cw-css").textContent = css;
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const t0 = performance.now();
    this.widget = (await import(url)).default;
    return performance.now() - t0;
  },
  async render(state) {
    const el = document.createElement("div");
    document.getElementById("host").append(el);
    this.model = new FakeModel(state);
    this.el = el;
    const t0 = performance.now();
    this.cleanup = await this.widget.render({ model: this.model, el, host: null });
    await frames();
    return performance.now() - t0;
  },
  async renderRows(state, n) {  // first paint, then what is in the DOM and where the end is
    const first = await this.render(state);
    const el = this.el;
    const table = el.querySelector("table");
    const inDom = el.querySelectorAll("tbody tr[data-id]").length;
    const nodes = el.querySelectorAll("*").length;
    const heap = performance.memory ? performance.memory.usedJSHeapSize : null;
    const box = el.querySelector(".cw-scroll");
    box.scrollTop = box.scrollHeight;
    await frames();
    await frames();
    const last = el.querySelector(`tbody tr[aria-rowindex="${n + 1}"]`);
    return { first, inDom, nodes, heap, rowcount: table.getAttribute("aria-rowcount"),
             lastName: last ? last.querySelector(".cw-col-name").textContent : null,
             inDomAtEnd: el.querySelectorAll("tbody tr[data-id]").length };
  },
  async renderAllRows(state, n) {  // [first paint, every row in the DOM] (views that draw all rows)
    const t0 = performance.now();
    const first = await this.render(state);
    const count = () => this.el.querySelectorAll("tbody tr[data-id]").length;
    while (count() < n && performance.now() - t0 < 30000) {
      await new Promise((r) => requestAnimationFrame(r));
    }
    await frames();
    return [first, performance.now() - t0];
  },
  async floor() {  // two frames with nothing to do: the least any figure here can be
    const t0 = performance.now();
    await frames();
    return performance.now() - t0;
  },
  async deliver(content) {
    const t0 = performance.now();
    this.model.deliver(content);
    await frames();
    return performance.now() - t0;
  },
};
</script></body></html>
"""

LOG_TEXT = """() => {
  const pre = window.bench.el.querySelector('pre');
  const text = pre.textContent;
  return { lines: (text.match(/\\n/g) || []).length, tail: text.slice(-200),
           info: window.bench.el.querySelector('.cw-log-info').textContent };
}"""


def _defaults(cls: type) -> dict[str, Any]:
    """The synced traits a view reads, at the widget class's defaults."""
    skip = {"layout", "tabbable", "tooltip"}
    out = {}
    for name, trait in cls.class_traits(sync=True).items():
        if name.startswith("_") or name in skip:
            continue
        out[name] = trait.default()
    return json.loads(json.dumps(out, default=lambda _: None))


def table_state(n: int) -> tuple[dict[str, Any], float]:
    """SessionTable's traits with ``n`` real rows, as the kernel holds them after a snapshot,
    and the first render's bytes over one snapshot's (measured on a real SessionTable)."""
    from canfar_widgets.local import LocalPlatform
    from canfar_widgets.widgets._traffic import measure_traffic
    from canfar_widgets.widgets.session_table import SessionTable

    with LocalPlatform(metrics_interval=0) as platform:
        platform.preload(n - n // 5, kind="headless", status="Running", name="job")
        platform.preload(n // 5, kind="notebook", status="Running", name="notebook")
        session = platform.session()
        table = SessionTable(session)
        try:
            with measure_traffic(table) as meter:
                table.refresh().result(60)  # the first poll, before any view
                table._dispatch_message(
                    table, {"kind": "snapshot", "have": 0}, []
                )  # a view renders
            rows = list(table.rows)
        finally:
            table.close()
            session.close()
    if len(rows) != n:
        raise RuntimeError(f"listed {len(rows)} sessions, expected {n}")
    ratio = meter.bytes / len(json.dumps(rows, separators=(",", ":")))
    state = _defaults(SessionTable)
    state.update(rows=rows, rows_version=1, last_updated=1.0e9)
    return state, ratio


def log_text(lines: int) -> str:
    """``lines`` log lines (~34 characters each, every tenth with ANSI colour)."""
    out = []
    for i in range(lines):
        stamp = f"{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        if i % 10 == 0:
            out.append(f"{stamp} \x1b[32mINFO\x1b[0m epoch {i // 10}\n")
        else:
            out.append(f"{stamp} step {i:6d} loss={1 / (i + 1):.4f}\n")
    return "".join(out)


def log_state(text: str, *, follow: bool, max_lines: int | None = None) -> dict[str, Any]:
    from canfar_widgets.widgets.log_viewer import LogViewer

    state = _defaults(LogViewer)
    state.update(
        ids=[LOG_ID],
        selected=LOG_ID,
        follow=follow,
        texts={LOG_ID: text},
        ends={LOG_ID: len(text)},
        states={LOG_ID: "Running" if follow else "Completed"},
        following=follow,
        last_updated=1.0e9,
    )
    if max_lines is not None:
        state["max_lines"] = max_lines
    if len(text) > state["max_chars"]:
        raise RuntimeError(
            f"the log ({len(text)} chars) is over max_chars: the kernel would cut it"
        )
    return state


class Page:
    """A fresh page with the harness and one widget module loaded."""

    def __init__(self, browser: Any, entry: str, width: int = 1280) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 800})
        self.page.set_content(HARNESS)
        self.import_ms = self.page.evaluate(
            "([s, c]) => window.bench.load(s, c)", [load_esm(entry), load_css()]
        )

    def render(self, state: dict[str, Any]) -> float:
        return self.page.evaluate("(state) => window.bench.render(state)", state)

    def deliver(self, content: dict[str, Any]) -> float:
        return self.page.evaluate("(content) => window.bench.deliver(content)", content)

    def close(self) -> None:
        self.page.close()


def _render_row(
    name: str,
    subject: str,
    times: list[float],
    target_ms: float,
    *,
    before: str = "",
    after: str = "",
) -> dict[str, Any]:
    """The row of a render time measured on fresh pages: the median against the target, and
    the spread, with ``before``/``after`` around the spread in the note."""
    median = statistics.median(times)
    return _row(
        name,
        subject,
        round(median, 1),
        "ms",
        f"<= {target_ms:g}",
        f"{verdict(median, '<=', target_ms)}; {before}median of {len(times)} pages "
        f"(min {min(times):.0f}, max {max(times):.0f}){after}",
    )


def bench_table(browser: Any, n: int, samples: int) -> list[dict[str, Any]]:
    state, ratio = table_state(n)
    name = f"browser SessionTable rows={n}"
    rows = []
    worst: dict[str, Any] = {}
    for width in TABLE_WIDTHS:
        times, imports = [], []
        for _ in range(samples):
            page = Page(browser, "session_table", width=width)
            try:
                seen = page.page.evaluate("([s, n]) => window.bench.renderRows(s, n)", [state, n])
                times.append(seen["first"])
                imports.append(page.import_ms)
                if seen["rowcount"] != str(n + 1) or not seen["lastName"]:
                    raise RuntimeError(
                        f"SessionTable does not reach row {n} (aria-rowcount {seen['rowcount']})"
                    )
                if max(seen["inDom"], seen["inDomAtEnd"]) >= n:
                    raise RuntimeError(
                        f"SessionTable put {seen['inDom']} of {n} rows in the DOM: not windowed"
                    )
                if not worst or seen["nodes"] > worst["nodes"]:
                    worst = seen
            finally:
                page.close()
        rows.append(
            _render_row(
                name,
                f"first render at {width} px (render() to first rows painted)",
                times,
                TABLE_TARGET_MS,
                after=f"; module import {statistics.median(imports):.0f} ms, not counted",
            )
        )
    heap = f"; JS heap {worst['heap'] / 1e6:.0f} MB" if worst.get("heap") else ""
    rows.append(
        _row(
            name,
            "DOM after first render (windowed rows)",
            worst["nodes"],
            "nodes",
            "a screenful",
            f"{worst['inDom']} of {n} rows in the DOM, {worst['inDomAtEnd']} after scrolling to "
            f"the end (row {n} reached, aria-rowcount {n + 1}){heap}",
        )
    )
    rows.append(
        _row(
            name,
            "first render: bytes sent / one snapshot",
            round(ratio, 3),
            "x",
            f"<= {TABLE_BYTES_TARGET:g}",
            f"{verdict(ratio, '<=', TABLE_BYTES_TARGET)}; a real SessionTable on the local "
            "platform: first poll, then a view asks for its rows (counted in the kernel)",
        )
    )
    return rows


def bench_logs(browser: Any, lines: int, samples: int) -> list[dict[str, Any]]:
    text = log_text(lines)
    default_cap = log_state(text, follow=False)["max_lines"]
    rows = []
    name = f"browser LogViewer lines={lines}"
    for label, max_lines in (
        (f"first render, default max_lines={default_cap}", None),
        ("first render, max_lines=0 (every line in the DOM)", 0),
    ):
        state = log_state(text, follow=False, max_lines=max_lines)
        shown_lines = lines if max_lines == 0 or lines <= default_cap else default_cap
        times = []
        for _ in range(samples):
            page = Page(browser, "log_viewer")
            try:
                times.append(page.render(state))
                seen = page.page.evaluate(LOG_TEXT)
                if seen["lines"] != shown_lines or not text.endswith(seen["tail"]):
                    raise RuntimeError(
                        f"LogViewer shows {seen['lines']} lines, expected {shown_lines}"
                    )
            finally:
                page.close()
        rows.append(
            _render_row(
                name, label, times, LOG_TARGET_MS, before=f"{shown_lines} lines in the DOM; "
            )
        )

    extra = "".join(f"23:59:{i % 60:02d} appended line {i}\n" for i in range(APPEND_LINES))
    state = log_state(text, follow=True)
    times = []
    for _ in range(samples):
        page = Page(browser, "log_viewer")
        try:
            page.render(state)
            times.append(
                page.deliver({"kind": "append", "id": LOG_ID, "text": extra, "start": len(text)})
            )
            seen = page.page.evaluate(LOG_TEXT)
            if not seen["tail"].endswith(extra[-100:]):
                raise RuntimeError("the appended lines are not at the end of the log")
            if page.page.evaluate("() => window.bench.model.sent.some((m) => m.kind === 'resync')"):
                raise RuntimeError("the view asked for a resync instead of appending")
        finally:
            page.close()
    median = statistics.median(times)
    rows.append(
        _row(
            name,
            f"follow mode: append {APPEND_LINES} lines (one message)",
            round(median, 1),
            "ms",
            "",
            f"message to painted frame, on top of the {lines}-line log at the "
            f"default cap; median of {samples} pages",
        )
    )
    return rows


def bench_floor(browser: Any, samples: int) -> list[dict[str, Any]]:
    page = Page(browser, "log_viewer")
    try:
        times = [page.page.evaluate("() => window.bench.floor()") for _ in range(samples)]
    finally:
        page.close()
    return [
        _row(
            "browser harness",
            "floor: two animation frames, no work",
            round(statistics.median(times), 1),
            "ms",
            "",
            f"context: included in every figure above; median of {samples}",
        )
    ]


def run(fast: bool = False) -> list[dict[str, Any]]:
    """Rows ``{benchmark, subject, value, unit, target, note}``.

    Example:
        >>> rows = run(fast=True)
        >>> rows[0]["unit"] in ("ms", "")
        True
    """
    n_rows, n_lines, samples = (1_000, 5_000, 3) if fast else (5_000, 50_000, 9)
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"CI=true but {CHROMIUM} is missing (apt-get install chromium)")
        return [
            _row(
                "browser",
                subject,
                "n/a",
                "ms",
                "",
                f"{CHROMIUM} is missing (apt-get install chromium)",
            )
            for subject in (
                "SessionTable first render",
                "LogViewer first render",
                "LogViewer append",
            )
        ]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            version = browser.version
            rows = (
                bench_table(browser, n_rows, samples)
                + bench_logs(browser, n_lines, samples)
                + bench_floor(browser, samples)
            )
        finally:
            browser.close()
    for row in rows:
        row["note"] += f"; Chromium {version} headless"
    return rows


if __name__ == "__main__":
    print(_table(run(fast="--fast" in sys.argv[1:])))
