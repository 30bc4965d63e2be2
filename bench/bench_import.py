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

SUBJECTS = {
    "python (no import)": "pass",
    "canfar_widgets.sessions": "import canfar_widgets.sessions",
    "canfar_widgets": "import canfar_widgets",
    "canfar_widgets + widgets": "import canfar_widgets.widgets.table",
    "canfar.sessions (official)": "import canfar.sessions",
}


def time_process(code: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(fast: bool = False) -> list[dict]:
    repeats = 3 if fast else 15
    base = time_process(SUBJECTS["python (no import)"], repeats)
    rows = [{"benchmark": "cold import", "subject": "python (no import)", "value": base * 1000,
             "unit": "ms", "target": "", "note": f"median of {repeats} processes"}]
    costs: dict[str, float] = {}
    for subject, code in SUBJECTS.items():
        if subject == "python (no import)":
            continue
        try:
            total = time_process(code, repeats)
        except subprocess.CalledProcessError as err:
            rows.append({"benchmark": "cold import", "subject": subject, "value": "n/a", "unit": "",
                         "target": "", "note": f"import failed: {err.stderr.decode()[-120:]}"})
            continue
        costs[subject] = total - base
        rows.append({"benchmark": "cold import", "subject": subject, "value": (total - base) * 1000,
                     "unit": "ms over bare python", "target": "", "note": f"median of {repeats} processes"})
    ours, theirs = costs.get("canfar_widgets.sessions"), costs.get("canfar.sessions (official)")
    if ours is not None and theirs:
        rows.append({"benchmark": "cold import", "subject": "canfar_widgets.sessions / canfar.sessions",
                     "value": ours / theirs, "unit": "ratio", "target": "<= 0.5",
                     "note": "met" if ours / theirs <= 0.5 else "missed"})
    return rows


if __name__ == "__main__":
    for row in run(fast="--fast" in sys.argv):
        print(row)
