"""Cold import: whole-process time of ``python -c "import X"``, medians over repeats.

Why whole processes: an import measured inside one process is warm after the first time.
Each run starts a fresh interpreter; the bare interpreter's start-up is measured the same
way and reported, so the import cost is the difference.

Target: ``import canfar_widgets.sessions`` costs at most half of ``import canfar.sessions``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import row, table, verdict

SUBJECTS = {
    "python (no import)": "pass",
    "canfar_widgets.sessions": "import canfar_widgets.sessions",
    "canfar_widgets": "import canfar_widgets",
    "canfar_widgets + widgets": "import canfar_widgets.widgets.session_table",
    "canfar.sessions (official)": "import canfar.sessions",
    # Import plus building a client with runtime credentials (no request is made): our
    # config layer and pydantic load on first construction, so this is the honest total.
    "canfar_widgets.sessions + Session()": (
        "from canfar_widgets.sessions import Session; "
        "Session(url='https://example.test/skaha/v1', token='t')"
    ),
    "canfar.sessions + Session() (official)": (
        "from canfar.sessions import Session; "
        "Session(url='https://example.test/skaha/v1', token='t')"
    ),
}


# The first call, in a fresh interpreter: import, build a client, list sessions once, each
# step timed in the child (interpreter start-up is not counted). BENCH_URL/BENCH_TOKEN name
# a local platform in another process (plain HTTP on loopback).
FIRST_CALL = """
import os, time
t0 = time.perf_counter()
from {module} import Session
t1 = time.perf_counter()
session = Session(url=os.environ["BENCH_URL"], token=os.environ["BENCH_TOKEN"])
t2 = time.perf_counter()
session.fetch()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""
FIRST_CALL_SUBJECTS = {
    "canfar_widgets": "canfar_widgets.sessions",
    "canfar (official)": "canfar.sessions",
}


def _child_env(**extra: str) -> dict[str, str]:
    """A child's environment with bytecode caching on, as for a user's second import.

    Why: a shell may set ``PYTHONDONTWRITEBYTECODE=1``; then this checkout (an editable
    install) is compiled from source in every fresh process (~30 ms for our modules) while
    canfar's installed package has its ``.pyc`` files. Without it the warm-up round writes
    our ``__pycache__`` (git ignores it), and both sides are measured alike.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def first_call(repeats: int) -> list[dict]:
    """Import + ``Session()`` + the first ``fetch()``, ours against canfar's, interleaved."""
    from bench.bench_fanout import local_platform

    samples: dict[str, list[tuple[float, float, float]]] = {s: [] for s in FIRST_CALL_SUBJECTS}
    failed: dict[str, str] = {}
    with local_platform(0.0) as (url, token, _pid), tempfile.TemporaryDirectory() as home:
        # An empty HOME: neither client finds a saved login or config file to read.
        env = _child_env(BENCH_URL=url, BENCH_TOKEN=token, HOME=home)
        for round_ in range(repeats + 1):  # round 0 warms the bytecode cache: not counted
            for subject, module in FIRST_CALL_SUBJECTS.items():
                if subject in failed:
                    continue
                done = subprocess.run(
                    [sys.executable, "-c", FIRST_CALL.format(module=module)],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if done.returncode != 0:
                    failed[subject] = (done.stderr.strip().splitlines() or ["?"])[-1][-120:]
                    continue
                a, b, c = (float(x) for x in done.stdout.split()[-3:])
                if round_:
                    samples[subject].append((a, b, c))
    rows, totals = [], {}
    for subject in FIRST_CALL_SUBJECTS:
        if subject in failed or not samples[subject]:
            rows.append(
                row(
                    "first call",
                    subject,
                    "n/a",
                    "ms",
                    "",
                    f"failed: {failed.get(subject, 'no runs')}",
                )
            )
            continue
        steps = [statistics.median(s[i] for s in samples[subject]) * 1000 for i in range(3)]
        totals[subject] = statistics.median(sum(s) for s in samples[subject]) * 1000
        rows.append(
            row(
                "first call",
                f"{subject}: import + Session() + fetch()",
                totals[subject],
                "ms",
                "",
                f"import {steps[0]:.0f} / Session() {steps[1]:.0f} / first "
                f"fetch {steps[2]:.0f} ms (medians); median of {repeats} processes",
            )
        )
    ours, theirs = totals.get("canfar_widgets"), totals.get("canfar (official)")
    if ours is not None and theirs:
        rows.append(
            row(
                "first call",
                "ours / canfar's",
                ours / theirs,
                "x",
                "<= 0.5",
                f"{verdict(ours / theirs, '<=', 0.5)}; local platform over plain HTTP "
                "(no TLS), no config file",
            )
        )
    else:
        rows.append(
            row("first call", "ours / canfar's", "n/a", "x", "<= 0.5", "a subject failed: no ratio")
        )
    return rows


def _one(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def run(fast: bool = False) -> list[dict]:
    """Interleaved rounds (every subject once per round, so drift hits all alike), medians.

    Rows: the bare interpreter, each import's cost over it, and the ratios against
    ``canfar.sessions``; the session client's carries the <= 0.5 target.
    """
    repeats = 3 if fast else 21
    samples: dict[str, list[float]] = {subject: [] for subject in SUBJECTS}
    failed: dict[str, str] = {}
    env = _child_env()
    for round_ in range(repeats + 1):  # round 0 warms the bytecode cache: not counted
        for subject, code in SUBJECTS.items():
            if subject in failed:
                continue
            try:
                took = _one(code, env)
            except subprocess.CalledProcessError as err:  # say, canfar not installed
                failed[subject] = (
                    err.stderr.decode(errors="replace").strip().splitlines()[-1][-120:]
                )
                continue
            if round_:
                samples[subject].append(took)
    base = statistics.median(samples["python (no import)"])
    note = f"median of {repeats} processes"
    rows = [row("cold import", "python (no import)", base * 1000, "ms", "", note)]
    costs: dict[str, float] = {}
    for subject in SUBJECTS:
        if subject == "python (no import)":
            continue
        if subject in failed:
            rows.append(
                row("cold import", subject, "n/a", "ms", "", f"import failed: {failed[subject]}")
            )
            continue
        costs[subject] = statistics.median(samples[subject]) - base
        rows.append(
            row("cold import", subject, costs[subject] * 1000, "ms over bare python", "", note)
        )
    theirs = costs.get("canfar.sessions (official)")
    built = costs.get("canfar.sessions + Session() (official)")
    ours_built = costs.get("canfar_widgets.sessions + Session()")
    if built and ours_built is not None:
        rows.append(
            row(
                "cold import",
                "import + Session(): ours / official",
                ours_built / built,
                "x",
                "",
                "context: what a script pays before its first request",
            )
        )
    for subject, target in (("canfar_widgets.sessions", 0.5), ("canfar_widgets", None)):
        ours = costs.get(subject)
        name = f"{subject} / canfar.sessions"
        if ours is None or not theirs:
            rows.append(
                row(
                    "cold import",
                    name,
                    "n/a",
                    "x",
                    "<= 0.5" if target else "",
                    "a subject failed: no ratio",
                )
            )
        else:
            ratio = ours / theirs
            note = (
                verdict(ratio, "<=", target)
                if target
                else "context: the package with the widgets' modules not yet imported"
            )
            rows.append(
                row("cold import", name, ratio, "x", f"<= {target:g}" if target else "", note)
            )
    return rows + first_call(3 if fast else 15)


if __name__ == "__main__":
    print(table(run(fast="--fast" in sys.argv[1:])))
