"""One session (or desktop-app) as the platform stores it, and its wire forms.

A record caches its JSON renderings and drops the cache whenever a visible field changes
(:meth:`StoredSession.touch`), so listing 1,000 sessions is a string join, not 1,000
``json.dumps`` calls.

Example:
    >>> r = StoredSession(id="abcd1234", userid="alice", uid=1000, gid=1000, groups=(),
    ...                   image="images.canfar.net/skaha/terminal:1.1.2", type="headless",
    ...                   name="job", connect_url="", fixed=False, req_millicores=1000,
    ...                   req_ram_gib=4, gpus=0, deadline=1209600, created=0.0)
    >>> r.as_dict()["requestedGPUCores"], "requestedRAM" in r.as_dict()
    ('0', False)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canfar_widgets.local.formats import (
    gib_to_gb,
    gson_pretty,
    indent_item,
    instant,
    offset_datetime,
)

__all__ = ["ACTIVE", "FINISHED", "StoredEvent", "StoredSession"]

PENDING, RUNNING, TERMINATING, COMPLETED, FAILED = (
    "Pending",
    "Running",
    "Terminating",
    "Completed",
    "Failed",
)
ACTIVE = frozenset({PENDING, RUNNING})
FINISHED = frozenset({COMPLETED, FAILED})


@dataclass(slots=True)
class StoredEvent:
    """One Kubernetes event row of a stored session (the client parses these as ``Event``);
    ``first``/``last`` None print as ``<none>`` (scheduler events)."""

    type: str
    reason: str
    message: str
    first: int | None
    last: int | None

    def to_state(self) -> list[Any]:
        return [self.type, self.reason, self.message, self.first, self.last]

    def row(self) -> list[str]:
        first = instant(self.first) if self.first is not None else "<none>"
        last = instant(self.last) if self.last is not None else "<none>"
        return [self.type, self.reason, self.message, first, last]


@dataclass(slots=True, eq=False)
class StoredSession:
    """A session (or desktop-app) as the local platform stores it; not the client's
    ``SessionRecord``. Mutate only on the platform loop, then call :meth:`touch`."""

    id: str
    userid: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    image: str
    type: str
    name: str
    connect_url: str
    fixed: bool
    req_millicores: int  # CPU request, for stats and fixed sessions' requestedCPUCores
    req_ram_gib: float  # memory request in GiB
    gpus: int
    deadline: int  # activeDeadlineSeconds: expiry = start + deadline
    created: float
    appid: str | None = None
    status: str = PENDING
    start: int | None = None  # epoch seconds (Kubernetes keeps whole seconds)
    finished_at: float | None = None
    ram_in_use: str | None = None
    cpu_in_use: str | None = None
    events: list[StoredEvent] = field(default_factory=list)
    log_text: str = ""  # canned logs of emulated (interactive) sessions
    log_file: str | None = None  # a headless job's log (its stdout and stderr)
    ram_limit_gib: float | None = None  # the memory limit: over it, the job is OOMKilled
    pgid: int | None = None  # the job's process group, with the leader's start time and the
    pgid_start: int | None = None  # boot it started in: how a restart finds leftovers
    boot: str | None = None
    job: Any = None  # the headless process state (jobs.Job), if any
    timers: dict[str, Any] = field(default_factory=dict)
    changed: Callable[[StoredSession], None] | None = field(default=None, repr=False)
    _pretty: str | None = None
    _item: str | None = None
    _public: str | None = None

    # ----------------------------------------------------------------- identity
    @property
    def job_name(self) -> str:
        """The Kubernetes Job name the server would use; also the listing sort key."""
        user = "".join(c if c.isalnum() else "-" for c in self.userid.lower())
        kind = self.type
        suffix = f"-{self.appid}" if self.appid else ""
        return f"skaha-{kind}-{user}-{self.id}{suffix}"

    @property
    def expiry(self) -> int | None:
        return None if self.start is None else self.start + self.deadline

    # ------------------------------------------------------------------ changes
    def touch(self) -> None:
        """Forget cached renderings after a change."""
        self._pretty = self._item = self._public = None

    def set_status(self, status: str) -> None:
        self.status = status
        if status in FINISHED and self.finished_at is None:
            self.finished_at = time.time()
        if status not in ACTIVE:
            self.ram_in_use = self.cpu_in_use = None  # metrics exist for live pods only
        self.touch()
        self.save()

    def add_event(self, type_: str, reason: str, message: str, *, timed: bool = True) -> None:
        now = int(time.time()) if timed else None
        self.events.append(StoredEvent(type_, reason, message, now, now))
        self.save()

    def save(self) -> None:
        """Tell the store this record's persisted state changed (it writes it soon)."""
        if self.changed is not None:
            self.changed(self)

    # -------------------------------------------------------------- persisting
    @property
    def key(self) -> str:
        """Unique among sessions and desktop-apps: ``id`` or ``id/appid``."""
        return self.id if self.appid is None else f"{self.id}/{self.appid}"

    def to_state(self) -> dict[str, Any]:
        """What survives a restart of the platform (no process handle, no timers)."""
        return {name: getattr(self, name) for name in _STATE_FIELDS} | {
            "groups": list(self.groups),
            "events": [e.to_state() for e in self.events],
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> StoredSession:
        values = {name: data[name] for name in _STATE_FIELDS if name in data}
        values["groups"] = tuple(data.get("groups", ()))
        record = cls(**values)
        record.events = [StoredEvent(*e) for e in data.get("events", [])]
        return record

    # ------------------------------------------------------------------ renders
    def requested_cpu(self) -> str:
        cores, milli = divmod(self.req_millicores, 1000)
        return str(cores) if milli == 0 else f"{self.req_millicores / 1000:.3f}"

    def as_dict(self) -> dict[str, Any]:
        """The server's field order; None-valued fields are left out, as Gson does."""
        d: dict[str, Any] = {
            "id": self.id,
            "userid": self.userid,
            "runAsUID": str(self.uid),
            "runAsGID": str(self.gid),
            "supplementalGroups": list(self.groups),
        }
        if self.appid is not None:
            d["appid"] = self.appid
        d["image"] = self.image
        d["type"] = self.type
        d["status"] = self.status
        d["name"] = self.name
        if self.start is not None:
            d["startTime"] = offset_datetime(self.start)
            d["expiryTime"] = instant(self.start + self.deadline)
        d["connectURL"] = self.connect_url
        if self.fixed:
            d["requestedRAM"] = gib_to_gb(self.req_ram_gib)
            d["requestedCPUCores"] = self.requested_cpu()
        d["requestedGPUCores"] = str(self.gpus)
        if self.ram_in_use is not None:
            d["ramInUse"] = self.ram_in_use
        if self.cpu_in_use is not None:
            d["cpuCoresInUse"] = self.cpu_in_use
        d["isFixedResources"] = self.fixed
        return d

    def public_dict(self) -> dict[str, Any]:
        """The ``view=all`` entry: what other users may see."""
        d: dict[str, Any] = {"userid": self.userid, "type": self.type, "status": self.status}
        if self.start is not None:
            d["startTime"] = offset_datetime(self.start)
        return d

    def pretty(self) -> str:
        """The record as ``GET /session/{id}`` answers it."""
        if self._pretty is None:
            self._pretty = gson_pretty(self.as_dict())
        return self._pretty

    def item(self) -> str:
        """The record as one element of a pretty list."""
        if self._item is None:
            self._item = indent_item(self.pretty())
        return self._item

    def public_item(self) -> str:
        if self._public is None:
            self._public = indent_item(gson_pretty(self.public_dict()))
        return self._public


_STATE_FIELDS = (
    "id",
    "userid",
    "uid",
    "gid",
    "image",
    "type",
    "name",
    "connect_url",
    "fixed",
    "req_millicores",
    "req_ram_gib",
    "gpus",
    "deadline",
    "created",
    "appid",
    "status",
    "start",
    "finished_at",
    "log_text",
    "log_file",
    "ram_limit_gib",
    "pgid",
    "pgid_start",
    "boot",
)
