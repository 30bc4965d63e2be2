"""Why a replica failed, in words, from what the platform says: status, events and logs.

Skaha reports a headless job's end as ``Failed`` and little else; the cause is in the
Kubernetes words of its events (``OOMKilled``, ``ErrImagePull``, ``FailedScheduling``...),
in the status (``Failed (DeadlineExceeded)``) or in the log's last lines. The rules below
read those words; the first that matches wins, most specific first.

Example:
    >>> classify("Failed", "Warning  BackOff  Back-off pulling image ... ErrImagePull", "")
    'image pull failure'
    >>> last_error_line("Traceback (most recent call last):\\n  ...\\nValueError: bad frame 3\\n")
    'ValueError: bad frame 3'
"""

from __future__ import annotations

import re

__all__ = [
    "CANNOT_SCHEDULE",
    "CANNOT_START",
    "DEADLINE",
    "DELETED",
    "IMAGE_PULL",
    "LOST",
    "NON_ZERO_EXIT",
    "OUT_OF_MEMORY",
    "classify",
    "last_error_line",
]

OUT_OF_MEMORY = "out of memory"
IMAGE_PULL = "image pull failure"
CANNOT_SCHEDULE = "cannot be scheduled"
DEADLINE = "ran past its deadline"
DELETED = "deleted by the user"
CANNOT_START = "the command could not be started"
NON_ZERO_EXIT = "non-zero exit"
LOST = "the launch answer was lost and no session of that name appeared"

_EXIT_CODE = re.compile(r"exit(?:ed)?[ _-]?(?:code|status)[\s:=]*\"?(-?\d+)", re.I)
_OOM = re.compile(r"\bOOMKilled\b|\bout of memory\b|\bOOM[- ]?kill", re.I)
_PULL = re.compile(
    r"\bErrImagePull\b|\bImagePullBackOff\b|Failed to pull image|"
    r"\bInvalidImageName\b|\bErrImageNeverPull\b",
    re.I,
)
_SCHEDULING = re.compile(
    r"\bFailedScheduling\b|\bexceeded quota\b|\bInsufficient (cpu|memory|"
    r"nvidia\.com/gpu|ephemeral-storage)\b",
    re.I,
)
_INSUFFICIENT = re.compile(r"Insufficient ([A-Za-z][\w/-]*(?:\.[a-z]+/[\w-]+)?)", re.I)
_QUOTA = re.compile(r"exceeded quota|quota", re.I)
_DEADLINE = re.compile(r"\bDeadlineExceeded\b|active longer than specified deadline", re.I)
_START = re.compile(
    r"OCI runtime create failed|executable file not found|"
    r"failed to create containerd task|\bCreateContainerError\b|"
    r"\bRunContainerError\b|no such file or directory: unknown",
    re.I,
)
# Lines that say what went wrong (the last such line of a log is its "error line").
_ERROR_LINE = re.compile(
    r"(Error|Exception|Traceback|error:|FATAL|Fatal|panic:|Killed|"
    r"Segmentation fault|Aborted|failed)",
    re.I,
)


def classify(
    status: str, events: str = "", logs: str = "", *, deleted: bool = False, lost: bool = False
) -> str:
    """The failure reason of one attempt, in words (``""`` when nothing failed).

    ``deleted``: the user (or :meth:`Batch.destroy`) deleted it before it finished.
    ``lost``: its create answer was lost and no session of its name appeared.
    """
    if deleted:
        return DELETED
    if lost:
        return LOST
    if not status.startswith("Failed"):
        return ""
    text = "\n".join((status, events))
    code = _exit_code(text) or _exit_code(logs[-4000:])
    if _DEADLINE.search(text):
        return DEADLINE
    if _OOM.search(text) or code == 137:
        return f"{OUT_OF_MEMORY} (exit code 137)" if code == 137 else OUT_OF_MEMORY
    if code is not None and code != 0:
        # It ran and exited: earlier FailedScheduling or pull events (a batch waiting for
        # capacity) are history, not the cause.
        return f"{NON_ZERO_EXIT} (exit code {code})"
    if _PULL.search(text):
        return IMAGE_PULL
    if _SCHEDULING.search(text):
        return _scheduling(text)
    if _START.search(text):
        return CANNOT_START
    return NON_ZERO_EXIT


def _exit_code(text: str) -> int | None:
    found = _EXIT_CODE.findall(text)
    return int(found[-1]) if found else None


def _scheduling(text: str) -> str:
    shortages = []
    for what in _INSUFFICIENT.findall(text):
        word = {"cpu": "CPU", "memory": "RAM", "nvidia.com/gpu": "GPU"}.get(what.lower(), what)
        if word not in shortages:
            shortages.append(word)
    if shortages:
        return f"{CANNOT_SCHEDULE}: insufficient {', '.join(shortages)}"
    if _QUOTA.search(text):
        return f"{CANNOT_SCHEDULE}: quota exceeded"
    return CANNOT_SCHEDULE


def last_error_line(logs: str) -> str:
    """The last line of a log that says what went wrong, else its last non-blank line.

    For a Python traceback that is the exception line (``ValueError: bad frame 3``).
    """
    lines = [line.rstrip() for line in logs.splitlines() if line.strip()]
    for line in reversed(lines[-200:]):
        if _ERROR_LINE.search(line) and not line.lstrip().startswith("File "):
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else ""
