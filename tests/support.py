"""Small helpers the test modules share: waiting for a condition, reading process groups."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll ``predicate`` until truthy; returns its last value (falsy on timeout).

    For ``assert wait_until(...)``: work happens on the runner or platform threads.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Like :func:`wait_until`, but a timeout raises ``AssertionError``."""
    value = wait_until(predicate, timeout, step)
    if not value:
        raise AssertionError(f"condition not reached in {timeout} s")
    return value


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of process group ``pgid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def group_alive(pgid: int) -> bool:
    """Whether a non-zombie process of group ``pgid`` exists (orphans may await reaping)."""
    return bool(group_members(pgid))
