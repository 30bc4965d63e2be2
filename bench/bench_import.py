"""Cold import: whole-process time of ``python -c "import X"``, medians over repeats.

Why whole processes: an import measured inside one process is warm after the first time.
Each run starts a fresh interpreter; the bare interpreter's start-up is measured the same
way and reported, so the import cost is the difference.

Target: ``import canfar_widgets.sessions`` costs at most half of ``import canfar.sessions``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import row, table, verdict

SUBJECTS = {
    "python (no import)": "pass",
    "canfar_widgets.sessions": "import canfar_widgets.sessions",
    "canfar_widgets": "import canfar_widgets",
    "canfar_widgets + widgets": "import canfar_widgets.widgets.table",
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


def _one(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def run(fast: bool = False) -> list[dict]:
    """Interleaved rounds (every subject once per round, so drift hits all alike), medians.

    Rows: the bare interpreter, each import's cost over it, and the ratios against
    ``canfar.sessions``; the session client's carries the <= 0.5 target.
    """
    repeats = 3 if fast else 21
    samples: dict[str, list[float]] = {subject: [] for subject in SUBJECTS}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for subject, code in SUBJECTS.items():
            if subject in failed:
                continue
            try:
                samples[subject].append(_one(code))
            except subprocess.CalledProcessError as err:  # say, canfar not installed
                failed[subject] = err.stderr.decode(errors="replace").strip().splitlines()[-1][-120:]
    base = statistics.median(samples["python (no import)"])
    note = f"median of {repeats} processes"
    rows = [row("cold import", "python (no import)", base * 1000, "ms", "", note)]
    costs: dict[str, float] = {}
    for subject in SUBJECTS:
        if subject == "python (no import)":
            continue
        if subject in failed:
            rows.append(row("cold import", subject, "n/a", "ms", "", f"import failed: {failed[subject]}"))
            continue
        costs[subject] = statistics.median(samples[subject]) - base
        rows.append(row("cold import", subject, costs[subject] * 1000, "ms over bare python", "", note))
    theirs = costs.get("canfar.sessions (official)")
    built = costs.get("canfar.sessions + Session() (official)")
    ours_built = costs.get("canfar_widgets.sessions + Session()")
    if built and ours_built is not None:
        rows.append(row("cold import", "import + Session(): ours / official", ours_built / built, "x", "",
                        "context: what a script pays before its first request"))
    for subject, target in (("canfar_widgets.sessions", 0.5), ("canfar_widgets", None)):
        ours = costs.get(subject)
        name = f"{subject} / canfar.sessions"
        if ours is None or not theirs:
            rows.append(row("cold import", name, "n/a", "x", "<= 0.5" if target else "",
                            "a subject failed: no ratio"))
        elif target:
            rows.append(row("cold import", name, ours / theirs, "x", f"<= {target:g}",
                            verdict(ours / theirs, "<=", target)))
        else:
            rows.append(row("cold import", name, ours / theirs, "x", "",
                            "context: the package with the widgets' modules not yet imported"))
    return rows

if __name__ == "__main__":
    print(table(run(fast="--fast" in sys.argv[1:])))
