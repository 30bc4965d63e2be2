"""The watchdog that kills a platform's jobs when the platform dies, however it dies.

A platform starts one supervisor (this file, run as a script: stdlib only, no package
import) with a pipe on its stdin, and tells it ``+<pgid> <start>`` when a job starts and
``-<pgid>`` when its group is gone. The supervisor ignores the signals a terminal or a
kernel shutdown sends to the foreground group and reads until end of file: the pipe closes
when the platform's process ends, SIGKILL included, and then every process group still
registered is killed (SIGKILL). ``<start>`` (the group leader's start time in clock ticks)
guards against a pid that was reused meanwhile.

Example (what the platform does):
    >>> sup = Supervisor.start()              # doctest: +SKIP
    >>> sup.watch(pgid=4242, start=123456)    # doctest: +SKIP
    >>> sup.forget(4242)                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

__all__ = ["Supervisor"]


def _start_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return int(stat[stat.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _kill_group(pgid: int, start: int | None) -> None:
    leader = _start_of(pgid)
    if leader is not None and start is not None and leader != start:
        return  # the number now belongs to another process: not ours
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _main() -> int:  # runs in the supervisor process
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    groups: dict[int, int | None] = {}
    for raw in sys.stdin.buffer:
        line = raw.strip().decode("ascii", "replace")
        if line.startswith("+"):
            pgid, _, start = line[1:].partition(" ")
            with contextlib.suppress(ValueError):
                groups[int(pgid)] = int(start) if start else None
        elif line.startswith("-"):
            with contextlib.suppress(ValueError):
                groups.pop(int(line[1:]), None)
    for pgid, start in groups.items():
        _kill_group(pgid, start)
    return 0


class Supervisor:
    """The platform's side of the pipe."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._lock = threading.Lock()

    @classmethod
    def start(cls) -> Supervisor:
        """Start the watchdog process (its own session: a terminal's signals miss it)."""
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        return cls(process)

    def _send(self, line: str) -> None:
        stdin = self._process.stdin
        if stdin is None:
            return
        with self._lock, contextlib.suppress(OSError, ValueError):
            stdin.write(line.encode("ascii") + b"\n")
            stdin.flush()

    def watch(self, pgid: int, start: int | None) -> None:
        """Kill group ``pgid`` if the platform dies while it lives."""
        self._send(f"+{pgid} {start if start is not None else ''}")

    def forget(self, pgid: int) -> None:
        """Group ``pgid`` is gone (or killed by the platform itself)."""
        self._send(f"-{pgid}")

    def close(self) -> None:
        """End the watchdog (it kills what is still registered, then exits)."""
        stdin = self._process.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - it only reads a pipe
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    sys.exit(_main())
