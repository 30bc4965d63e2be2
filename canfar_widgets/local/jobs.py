"""Headless sessions as real local processes.

A job is ``cmd`` plus ``args`` split on single spaces (no quoting, as the server builds the
container spec), started with :func:`asyncio.create_subprocess_exec` in its own session and
process group (``start_new_session=True``), under bubblewrap when the storage root can be
mounted at ``/arc`` (see :mod:`canfar_widgets.local.storage`). Its stdout and stderr go to one
pipe, so they stay merged in order, and the platform copies the pipe into the log file
(private to the user: 0600), as the container runtime does. The copy rotates the file the
way the kubelet does (``containerLogMaxSize`` 10 MiB, ``containerLogMaxFiles`` 5): past
``Job.log_max_bytes`` the file becomes ``<id>.log.1`` (older ones shift up, the oldest is
deleted) and a new file starts; ``?view=logs`` serves the current file only, as
``kubectl logs`` does.

The environment is container-like rather than inherited: a minimal base (``PATH`` with the
image's local environment and the platform's own Python environment first, ``LANG``), then
the user's ``env`` entries, then what the headless launch template sets (``HOME``/``PWD`` =
``/arc/home/<user>``, ``skaha_*``, ``OMP_NUM_THREADS``).

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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from canfar_widgets.local import proc
from canfar_widgets.local.formats import java_split
from canfar_widgets.local.storage import Storage

__all__ = [
    "Job",
    "Usage",
    "argv_for",
    "build_env",
    "exit_code",
    "job_path",
    "process_alive",
    "python_shim",
    "runtime_error",
    "sample_usage",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def argv_for(cmd: str, args: str | None) -> list[str]:
    """The container command: ``[cmd]`` + ``args`` split on single spaces, Java style."""
    return [cmd, *(java_split(args, " ") if args is not None else [])]


def python_shim(folder: Path) -> Path | None:
    """A folder holding ``python`` -> :data:`sys.executable`, when the interpreter's own
    folder has no ``python`` that is it (e.g. a system ``/usr/bin/python3.11``); else None."""
    own = Path(sys.executable).parent / "python"
    with contextlib.suppress(OSError):
        if own.exists() and own.resolve() == Path(sys.executable).resolve():
            return None
    link = folder / "python"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(sys.executable)
        return folder
    return None


def job_path(
    prefix: str | Path | None = None, base: str | None = None, shim: Path | None = None
) -> str:
    """``PATH`` for a job: ``<prefix>/bin``, the platform interpreter's folder, then ``base``.

    So ``python`` in a job is the interpreter the platform runs in (a kernel's, when
    ``LocalPlatform()`` was started from a notebook), unless the image maps to another
    environment. ``shim`` (see :func:`python_shim`) goes right after the prefix.

    Example:
        >>> job_path("/opt/envs/astro", "/usr/bin").split(":")[0]
        '/opt/envs/astro/bin'
    """
    parts = []
    if prefix is not None:
        parts.append(str(Path(prefix) / "bin"))
    if shim is not None:
        parts.append(str(shim))
    parts.append(os.path.dirname(sys.executable))
    parts.append(os.environ.get("PATH", os.defpath) if base is None else base)
    seen: list[str] = []
    for part in os.pathsep.join(parts).split(os.pathsep):
        if part and part not in seen:
            seen.append(part)
    return os.pathsep.join(seen)


def build_env(
    *,
    user_env: Sequence[tuple[str, str]],
    home: str | Path,
    username: str,
    session_id: str,
    hostname: str,
    threads: int,
    inherit: bool,
    prefix: str | Path | None = None,
    shim: Path | None = None,
) -> dict[str, str]:
    """The job's environment, layered base < user ``env`` < launch-template values."""
    if inherit:
        env = dict(os.environ)
        env["PATH"] = job_path(prefix, shim=shim)
    else:
        env = {"PATH": job_path(prefix, shim=shim), "LANG": "C.UTF-8"}
    if prefix is not None:
        env["VIRTUAL_ENV" if (Path(prefix) / "pyvenv.cfg").exists() else "CONDA_PREFIX"] = str(
            prefix
        )
    env.update(user_env)
    env.update(
        {
            "skaha_hostname": hostname,
            "skaha_username": username,
            "skaha_sessionid": session_id,
            "HOME": str(home),
            "PWD": str(home),
            "OMP_NUM_THREADS": str(threads),
        }
    )
    return env


def runtime_error(exc: OSError, cmd: str) -> str:
    """What containerd/runc reports when the command cannot be started."""
    if exc.errno == errno.ENOENT:
        if "/" in cmd:
            reason = f'exec: "{cmd}": stat {cmd}: no such file or directory'
        else:
            reason = f'exec: "{cmd}": executable file not found in $PATH'
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = f'exec: "{cmd}": permission denied'
    else:
        reason = f'exec: "{cmd}": {exc.strerror or exc}'
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        "failed: runc create failed: unable to start container process: "
        f"{reason}: unknown"
    )


def exit_code(returncode: int) -> int:
    """A container's exit code: a death by signal N reads 128 + N (SIGKILL: 137)."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass(slots=True)
class Usage:
    """A running process group's resource use, in the record's string formats."""

    ram: str
    cpu: str | None


@dataclass(eq=False)
class Job:
    """One headless process group: how to start it and, once started, its handle."""

    argv: list[str] | None  # None: no ``cmd`` was given (the image entrypoint is not emulated)
    env: dict[str, str]
    cwd: str  # the working directory as the job sees it
    log_path: Path
    storage: Storage | None = None
    process: asyncio.subprocess.Process | None = None
    start_ticks: int | None = None  # the leader's start time: guards the pgid against reuse
    stop_reason: str | None = None  # "delete", "deadline", "oom" or "shutdown" once stopping
    spawning: bool = False  # between asking for the process and having it
    _cpu: tuple[float, int] | None = field(default=None, repr=False)
    _copier: asyncio.Task[None] | None = field(default=None, repr=False)

    # Log rotation as the kubelet's defaults (containerLogMaxSize, containerLogMaxFiles);
    # 0 bytes: never rotate. Class-wide, so a test or benchmark can change it.
    log_max_bytes: ClassVar[int] = 10 * 1024 * 1024
    log_max_files: ClassVar[int] = 5
    # How long the copy may drain after the job's process group is gone (a process that
    # left the group can hold the pipe open for ever).
    drain_timeout: ClassVar[float] = 2.0

    @property
    def pgid(self) -> int | None:
        """The job's process group id (= its pid), while it has been started."""
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def local_cwd(self) -> Path:
        return self.storage.local(self.cwd, "/") if self.storage is not None else Path(self.cwd)

    def open_log(self) -> int:
        """Create the log file, private to the user (0600); returns an open descriptor."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append_log(self, text: str) -> None:
        """Add a line the way the runtime would (the job's own output goes there directly)."""
        fd = self.open_log()
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")

    async def spawn(self) -> None:
        """Start the process; raises ``OSError`` when it cannot be executed."""
        assert self.argv is not None
        local_cwd = self.local_cwd()
        local_cwd.mkdir(parents=True, exist_ok=True)
        argv = self.argv
        if self.storage is not None:
            problem = self.storage.check_command(
                argv[0], path=self.env.get("PATH", ""), cwd=self.cwd
            )
            if problem is not None:
                raise problem
            argv = self.storage.wrap(argv, cwd=self.cwd)
        log = self.open_log()  # before the process: a log that cannot be written fails the start
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=local_cwd,
                env=self.env,
                start_new_session=True,  # its own process group: we can kill all it started
            )
        except BaseException:
            os.close(log)
            raise
        assert self.process.stdout is not None
        self._copier = asyncio.ensure_future(self._copy_output(self.process.stdout, log))
        self.start_ticks = proc.start_ticks(self.process.pid)

    async def _copy_output(self, stream: asyncio.StreamReader, fd: int) -> None:
        """Copy the job's output into its log file, rotating it as the kubelet does."""
        try:
            written = os.fstat(fd).st_size
            while chunk := await stream.read(1 << 16):
                limit = self.log_max_bytes
                if limit > 0 and written + len(chunk) > limit:
                    # Rotate at a line end where there is one, so each file holds whole lines.
                    cut = chunk.rfind(b"\n", 0, max(0, limit - written)) + 1
                    if cut == 0 and written == 0:
                        cut = len(chunk)  # one line longer than the limit: it goes whole
                    _write_all(fd, chunk[:cut])
                    chunk = chunk[cut:]
                    os.close(fd)
                    fd = -1
                    self._rotate()
                    fd = self.open_log()
                    written = 0
                _write_all(fd, chunk)
                written += len(chunk)
        finally:
            if fd >= 0:
                os.close(fd)

    def _rotate(self) -> None:
        """``<log>`` -> ``<log>.1`` -> ``<log>.2`` ...; the oldest beyond the count is deleted."""
        keep = max(1, self.log_max_files - 1)  # rotated files kept beside the current one
        path = self.log_path
        with contextlib.suppress(FileNotFoundError):
            rotated_log(path, keep).unlink()
        for n in range(keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                rotated_log(path, n).rename(rotated_log(path, n + 1))
        with contextlib.suppress(FileNotFoundError):
            path.rename(rotated_log(path, 1))

    async def drain(self) -> None:
        """Wait until the job's output is all in the log (bounded by ``drain_timeout``)."""
        copier = self._copier
        if copier is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(copier), self.drain_timeout)
        except asyncio.TimeoutError:
            copier.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await copier
        except OSError:  # the log could not be written (disk full): what was copied stays
            pass

    async def wait(self) -> int:
        """Exit code (a death by signal N reads 128 + N); then kill the rest of the group.

        When a container's main process ends, the runtime tears down everything in it; the
        closest local equivalent is killing what is left of the process group.
        """
        assert self.process is not None
        code = await self.process.wait()
        self.signal(signal.SIGKILL)
        await self.drain()  # the session reads as finished only once its log is complete
        return exit_code(code)

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

    def _signal_job_processes(self, sig: int) -> None:
        """``sig`` to the job's own processes, not to bwrap's: bwrap dying first would
        SIGKILL the whole namespace and take the job's grace period away."""
        pgid = self.pgid
        if pgid is None:
            return
        if self.storage is None or not self.storage.mounted:
            self.signal(sig)
            return
        for p in proc.scan({pgid}).get(pgid, []):
            if p.comm == b"bwrap" and (p.pid == pgid or p.ppid == pgid):
                continue
            with contextlib.suppress(OSError):
                os.kill(p.pid, sig)

    def kill(self) -> None:
        """SIGKILL the job's processes; bwrap then exits (137) and reaps them itself."""
        self._signal_job_processes(signal.SIGKILL)

    async def terminate(self, grace: float) -> None:
        """SIGTERM the job, then SIGKILL it if the main process outlives ``grace``.

        Under bwrap the command is PID 1 of its namespace, so, as in a container, a SIGTERM
        it has no handler for is ignored and the kill comes after the grace period.
        """
        if not self.alive:
            return
        self._signal_job_processes(signal.SIGTERM)
        assert self.process is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.process.wait()), grace)
        if self.alive:
            # The job first, so bwrap outlives it and reaps it (no zombie left to PID 1)...
            self.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.process.wait()), 2.0)
        if self.alive:  # ...then whatever is left of the group.
            self.signal(signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.process.wait()), 5.0)

    def usage(self, members: list[proc.Proc]) -> Usage | None:
        """RAM and CPU use of the group from one ``/proc`` scan (None if unavailable)."""
        if not self.alive or not members:
            return None
        rss = sum(p.rss for p in members)
        ticks = sum(p.ticks for p in members)
        now = time.monotonic()
        cpu = None
        if self._cpu is not None:
            then, before = self._cpu
            if now > then:
                cpu = f"{max(0, ticks - before) / _CLK_TCK / (now - then):.3f}"
        self._cpu = (now, ticks)
        return Usage(ram=f"{rss / 1e9:.2f}", cpu=cpu)

    def sample(self) -> Usage | None:
        """Current RAM and CPU use of the process group, from ``/proc``."""
        pgid = self.pgid
        if pgid is None:
            return None
        return self.usage(proc.scan({pgid}).get(pgid, []))


def rotated_log(path: Path, n: int) -> Path:
    """The ``n``-th rotated copy of the log at ``path`` (1 is the newest)."""
    return path.with_name(f"{path.name}.{n}")


def delete_log(path: Path) -> None:
    """Delete the log at ``path`` and its rotated copies, if any.

    The copies are ``<log>.1``, ``<log>.2`` ... with no gap (``Job._rotate`` shifts them
    all), so the first missing one ends the search: no scan of a folder of thousands.
    """
    with contextlib.suppress(OSError):
        path.unlink()
    n = 1
    while True:
        try:
            rotated_log(path, n).unlink()
        except OSError:  # missing: no more; any other error: leave the rest
            return
        n += 1


def sample_usage(pid: int) -> tuple[int, int] | None:
    """(resident bytes, utime+stime clock ticks) of ``pid``, or None (not Linux, gone)."""
    found = proc.read(pid)
    return (found.rss, found.ticks) if found is not None else None


def process_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists (a test and shutdown helper)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
