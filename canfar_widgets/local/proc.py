"""What ``/proc`` says about process groups: members, memory, CPU time, start times.

One :func:`scan` reads every process once and groups them by process group, so the memory
watch, the usage sampler and the shutdown reaper of a platform with 200 jobs cost one pass
over ``/proc``, not 200. Off Linux (no ``/proc``) every answer is empty.

Example:
    >>> import os
    >>> me = scan().get(os.getpgrp(), [])
    >>> any(p.pid == os.getpid() for p in me)
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Proc", "boot_id", "read", "scan", "start_ticks"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class Proc:
    """One live (non-zombie) process."""

    pid: int
    ppid: int
    pgid: int
    comm: bytes
    rss: int  # resident bytes
    ticks: int  # utime + stime, clock ticks
    start: int  # start time after boot, clock ticks (with the boot id: a pid reuse guard)


def _read(pid: str, pgids: set[int] | None = None) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    close = stat.rfind(b")")
    fields = stat[close + 2 :].split()
    try:
        if fields[0] in (b"Z", b"X"):
            return None
        pgid = int(fields[2])
        if pgids is not None and pgid not in pgids:
            return None  # not wanted: spare the second read
        with open(f"/proc/{pid}/statm", "rb") as fh:
            rss = int(fh.read().split()[1]) * _PAGE
        return Proc(
            pid=int(pid),
            ppid=int(fields[1]),
            pgid=pgid,
            comm=stat[stat.find(b"(") + 1 : close],
            rss=rss,
            ticks=int(fields[11]) + int(fields[12]),
            start=int(fields[19]),
        )
    except (OSError, ValueError, IndexError):
        return None


def scan(pgids: set[int] | None = None) -> dict[int, list[Proc]]:
    """Live processes by process group (only the groups in ``pgids`` when given)."""
    groups: dict[int, list[Proc]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return groups
    for entry in entries:
        if not entry.isdigit():
            continue
        proc = _read(entry, pgids)
        if proc is None:
            continue
        groups.setdefault(proc.pgid, []).append(proc)
    return groups


def read(pid: int) -> Proc | None:
    """One live process, or None (gone, a zombie, or no ``/proc``)."""
    return _read(str(pid))


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None if it is gone."""
    proc = _read(str(pid))
    return proc.start if proc is not None else None


def boot_id() -> str:
    """This boot's id: start times only compare within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""
