"""Small helpers the test modules share: waiting for a condition, reading process groups."""

from __future__ import annotations

import os
import re
import subprocess
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


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (None: no such process)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:  # the process ended meanwhile
        return None
    return data[data.rfind(b")") + 2 :].split()


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie awaiting its reaper."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` if it still runs, wait for it and close its pipes (a test's finally)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of process group ``pgid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is not None and int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def group_alive(pgid: int) -> bool:
    """Whether a non-zombie process of group ``pgid`` exists (orphans may await reaping)."""
    return bool(group_members(pgid))


# The one set of fast local-platform timings the suite uses; a test overrides only what it
# is about (e.g. ``cores=2`` for capacity), so the timings cannot drift between copies.
FAST_PLATFORM: dict[str, Any] = {
    "start_delay": 0.1,
    "headless_start_delay": 0.0,
    "terminating_delay": 0.05,
    "kill_grace": 0.5,
    "metrics_interval": 0,
}


# Dev mode (``python -X dev``) reports event-loop steps slower than 100 ms ("Executing <Task
# ...> took 0.146 seconds"): a busy machine's timings, not faults.
_SLOW_STEP = re.compile(r"^Executing <.*> took \d+\.\d+ seconds$")


def dev_mode_complaints(stderr: str) -> list[str]:
    """The lines of a ``-X dev`` child's stderr that are faults: all but its slow-step timings."""
    return [line for line in stderr.splitlines() if not _SLOW_STEP.match(line)]
