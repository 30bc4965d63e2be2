"""Headless sessions as real local processes.

A job is ``cmd`` plus ``args`` split on single spaces (no quoting, as the server builds the
container spec), started with :func:`asyncio.create_subprocess_exec` in its own session and
process group (``start_new_session=True``) and in its own working directory. Its stdout and
stderr go to one log file through the same descriptor, so they stay merged in order.

The environment is container-like rather than inherited: a minimal base (``PATH`` from the
platform, ``LANG``), then the user's ``env`` entries, then what the headless launch template
sets (``HOME``/``PWD`` = the job's directory, ``skaha_*``, ``OMP_NUM_THREADS``).

Example:
    >>> argv_for("echo", "hello  world")
    ['echo', 'hello', '', 'world']
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from canfar_widgets.local.formats import java_split

__all__ = ["Job", "Usage", "argv_for", "build_env", "process_alive", "runtime_error",
           "sample_usage"]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def argv_for(cmd: str, args: str | None) -> list[str]:
    """The container command: ``[cmd]`` + ``args`` split on single spaces, Java style."""
    return [cmd, *(java_split(args, " ") if args is not None else [])]


def build_env(*, user_env: Sequence[tuple[str, str]], home: Path, username: str,
              session_id: str, hostname: str, threads: int, inherit: bool) -> dict[str, str]:
    """The job's environment, layered base < user ``env`` < launch-template values."""
    if inherit:
        env = dict(os.environ)
    else:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
        }
    env.update(user_env)
    env.update({
        "skaha_hostname": hostname,
        "skaha_username": username,
        "skaha_sessionid": session_id,
        "HOME": str(home),
        "PWD": str(home),
        "OMP_NUM_THREADS": str(threads),
    })
    return env


def runtime_error(exc: OSError, cmd: str) -> str:
    """What containerd/runc reports when the command cannot be started."""
    if exc.errno == errno.ENOENT:
        if "/" in cmd:
            reason = f"exec: \"{cmd}\": stat {cmd}: no such file or directory"
        else:
            reason = f"exec: \"{cmd}\": executable file not found in $PATH"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = f"exec: \"{cmd}\": permission denied"
    else:
        reason = f"exec: \"{cmd}\": {exc.strerror or exc}"
    return ("failed to create containerd task: failed to create shim task: OCI runtime create "
            "failed: runc create failed: unable to start container process: "
            f"{reason}: unknown")


@dataclass(slots=True)
class Usage:
    """A running process's resource use, in the record's string formats."""

    ram: str
    cpu: str | None


@dataclass(eq=False)
class Job:
    """One headless process: how to start it and, once started, its handle."""

    argv: list[str] | None  # None: no ``cmd`` was given (the image entrypoint is not emulated)
    env: dict[str, str]
    cwd: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    stop_reason: str | None = None  # "delete", "deadline" or "shutdown" once asked to stop
    spawning: bool = False  # between asking for the process and having it
    _cpu: tuple[float, int] | None = field(default=None, repr=False)

    @property
    def pgid(self) -> int | None:
        """The job's process group id (= its pid), while it has been started."""
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def append_log(self, text: str) -> None:
        """Add a line the way the runtime would (the job's own output goes there directly)."""
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")

    async def spawn(self) -> None:
        """Start the process; raises ``OSError`` when it cannot be executed."""
        assert self.argv is not None
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,  # its own process group: we can kill all it started
            )

    async def wait(self) -> int:
        """Exit status (negative: killed by that signal); then reap the rest of the group.

        When a container's main process ends, the runtime tears down everything in it; the
        closest local equivalent is killing what is left of the process group.
        """
        assert self.process is not None
        code = await self.process.wait()
        self.signal(signal.SIGKILL)
        return code

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False if nothing is left."""
        pgid = self.pgid
        if pgid is None:
            return False
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def terminate(self, grace: float) -> None:
        """SIGTERM the group, then SIGKILL it if the main process outlives ``grace``."""
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        assert self.process is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.process.wait()), grace)
        if self.alive:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.process.wait()), 5.0)

    def sample(self) -> Usage | None:
        """Current RAM and CPU use of the main process, from ``/proc`` (None if unavailable)."""
        if not self.alive:
            return None
        assert self.process is not None
        reading = sample_usage(self.process.pid)
        if reading is None:
            return None
        rss, ticks = reading
        now = time.monotonic()
        cpu = None
        if self._cpu is not None:
            then, before = self._cpu
            if now > then:
                cpu = f"{max(0, ticks - before) / _CLK_TCK / (now - then):.3f}"
        self._cpu = (now, ticks)
        return Usage(ram=f"{rss / 1e9:.2f}", cpu=cpu)


def sample_usage(pid: int) -> tuple[int, int] | None:
    """(resident bytes, utime+stime clock ticks) of ``pid``, or None (not Linux, gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            rss = int(fh.read().split()[1]) * _PAGE
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (OSError, ValueError, IndexError):
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (ValueError, IndexError):
        return None
    return rss, ticks


def process_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists (a test and shutdown helper)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

