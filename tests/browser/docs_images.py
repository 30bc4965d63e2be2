"""Copy the screenshots the docs use from artifacts/screenshots/ into docs/img/.

The screenshots are taken by the browser tests (``tests/browser/test_themes.py``), so
refreshing the docs' pictures is:

    python -m pytest tests/browser/test_themes.py
    python tests/browser/docs_images.py            # --check: only say what is missing

Only the chosen pictures are copied, and each must stay small (the docs live in git).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "artifacts" / "screenshots"
TARGET = REPO / "docs" / "img"
# What docs/widgets.md and docs/index.md show.
CHOSEN = [
    "dashboard-light",
    "dashboard-dark",
    "launch-form-light",
    "launch-form-dark",
    "session-table-light",
    "session-table-dark",
    "log-viewer-light",
    "log-viewer-follow-lab-1280-light",  # docs/widgets.md, LogViewer (test_log_viewer_ux.py)
    "events-view-light",
    "platform-load-light",
    "watch-light",
]
MAX_BYTES = 200_000


def main(argv: list[str]) -> int:
    check = "--check" in argv
    problems = []
    for name in CHOSEN:
        source = SOURCE / f"{name}.png"
        if not source.exists():
            problems.append(f"missing {source.relative_to(REPO)} (run the browser tests first)")
        elif source.stat().st_size > MAX_BYTES:
            problems.append(f"{source.name} is {source.stat().st_size} bytes (> {MAX_BYTES})")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if check:
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in CHOSEN:
        shutil.copyfile(SOURCE / f"{name}.png", TARGET / f"{name}.png")
        print(f"docs/img/{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
