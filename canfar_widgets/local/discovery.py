"""Where running local platforms announce themselves, so other tools can find them.

While a platform runs it keeps ``<user state dir>/local-platforms/<port>.json`` holding
``{"url": ..., "arc": ..., "pid": ...}`` (the file 0600, its folder 0700); it removes the
file when it stops. A batch tool reads it to learn where a platform's storage root is
(``arc``), so it can read what the jobs wrote. The token is never written there.

This module imports neither tornado nor the rest of the platform.

Example:
    >>> path = announce(url="http://127.0.0.1:8765/skaha/v1", arc="/tmp/arc", port=8765)  # doctest: +SKIP
    >>> read(8765)["arc"]                                                   # doctest: +SKIP
    '/tmp/arc'
    >>> withdraw(8765)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["announce", "directory", "read", "read_all", "withdraw"]


def directory() -> Path:
    """``<user state dir>/local-platforms`` (not created)."""
    return Path(platformdirs.user_state_dir("canfar-widgets")) / "local-platforms"


def announce(*, url: str, arc: str | Path, port: int, pid: int | None = None) -> Path:
    """Write (atomically) the file for the platform on ``port``; returns its path."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)
    target = folder / f"{port}.json"
    body = json.dumps(
        {"url": url, "arc": str(Path(arc).resolve()), "pid": os.getpid() if pid is None else pid}
    )
    temp = folder / f".{port}.json.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(temp, target)
    return target


def withdraw(port: int, pid: int | None = None) -> None:
    """Remove the file for ``port`` if it is this process's (or ``pid``'s)."""
    current = read(port)
    if current is not None and current.get("pid") == (os.getpid() if pid is None else pid):
        with contextlib.suppress(OSError):
            (directory() / f"{port}.json").unlink()


def read(port: int) -> dict[str, Any] | None:
    """The announcement of the platform on ``port``, or None (none, unreadable, or its
    process is gone)."""
    path = directory() / f"{port}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not _alive(data.get("pid")):
        return None
    return data


def read_all() -> list[dict[str, Any]]:
    """Every live platform's announcement, by port."""
    try:
        names = sorted(directory().glob("*.json"))
    except OSError:
        return []
    found = []
    for path in names:
        with contextlib.suppress(ValueError):
            entry = read(int(path.stem))
            if entry is not None:
                found.append(entry)
    return found


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
