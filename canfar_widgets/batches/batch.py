"""``Batch``: a persistent, re-runnable record of one headless launch in replicas.

Why: a batch outlives the kernel that launched it and the platform's own memory of it
(finished sessions vanish after a while, their logs with them). ``Batch`` records the
launch before the first POST, follows every replica through one listing request per poll,
archives each replica's logs and events when it finishes, says why it failed in words,
and re-runs replicas as themselves (``name-<n>``, the same ``REPLICA_ID``/``REPLICA_COUNT``).

Implemented once, async, on the package runner; the plain methods wait for it, so they
work in scripts, in notebook cells and inside running loops (as ``Session`` does).

Example:
    >>> from canfar_widgets import Batch
    >>> batch = Batch.launch("scan", "images.canfar.net/skaha/astroml:latest",
    ...                      cmd="python", args="/arc/home/me/scan.py", replicas=12)
    >>> batch.wait()
    >>> batch.counts
    {'Completed': 8, 'Failed': 4}
    >>> for row in batch.errors():
    ...     print(row.replica, row.reason, row.last_line)
    3 non-zero exit ValueError: bad frame 0017
    >>> batch.rerun(env={"SKIP_BAD": "1"})   # the 4 failed replicas, as themselves
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import httpx

from canfar_widgets.batches import _reasons
from canfar_widgets.batches._hooks import Hooks
from canfar_widgets.batches._outputs import Outputs, find_outputs
from canfar_widgets.batches._record import AttemptRow, BatchRow, Record
from canfar_widgets.runner import get_runner

if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.models import ContainerRegistry, CreateRequest
    from canfar_widgets.sessions import AsyncSession, Session

__all__ = ["Batch", "BatchSummary", "ErrorRow", "Replica", "ReplicaUsage", "Usage"]

T = TypeVar("T")
C = TypeVar("C")
P = ParamSpec("P")
log = logging.getLogger(__name__)
_WAIT_FAILURES = 10  # consecutive failed refreshes wait() polls through before it raises

# Statuses a replica can have: the platform's, and three of the record's own.
LAUNCHING = "Launching"  # claimed in the record, its POST not answered yet
UNKNOWN = "Unknown"  # the POST's answer was lost: it may exist (found later by name)
DELETED = "Deleted"  # deleted before it finished (by destroy() or by the user elsewhere)
GONE = "Gone"  # left the platform unseen for longer than its cleanup delay: end not known
FINAL = frozenset({"Completed", "Failed", DELETED, GONE})
ACTIVE = frozenset({"Pending", "Running", "Terminating"})
_ORDER = (
    LAUNCHING,
    UNKNOWN,
    "Pending",
    "Running",
    "Terminating",
    "Completed",
    "Failed",
    DELETED,
    GONE,
)
_RANK = {
    LAUNCHING: 0,
    UNKNOWN: 0,
    "Pending": 1,
    "Running": 2,
    "Terminating": 3,
    "Completed": 4,
    "Failed": 4,
    DELETED: 4,
    GONE: 4,
}
# A finished headless session stays listed this long (ttlSecondsAfterFinished): one that
# vanished sooner after it was last seen active cannot have been cleaned up, so was deleted.
CLEANUP_DELAY = 3600.0
# A session just created may be missing from a listing for a moment; not "deleted" yet.
LIST_GRACE = 60.0
_PLATFORM = {
    "pending": "Pending",
    "running": "Running",
    "terminating": "Terminating",
    "completed": "Completed",
    "succeeded": "Completed",
    "failed": "Failed",
    "error": "Failed",
}
_SPEC_KEYS = ("name", "image", "cores", "ram", "kind", "gpu", "cmd", "args", "env")
_CHANGEABLE = ("env", "cores", "ram", "gpu", "cmd", "args", "image")
LAUNCH_REFUSED = "launch refused"

# Archive caps per attempt: the *end* of a log is kept (that is where errors are).
LOG_CAP = 256 * 1024
EVENTS_CAP = 64 * 1024


@dataclass(frozen=True)
class Replica:
    """One replica of a batch, as of the last refresh.

    Attributes:
        replica: its number, 1-based (its ``REPLICA_ID``).
        id: the session id of its current attempt (None while unknown or never created).
        name: its session name, ``<batch>-<replica>`` (the batch name when it has one replica).
        status: ``Pending``, ``Running``, ``Terminating``, ``Completed``, ``Failed``, or the
            record's own ``Launching`` (POST in flight), ``Unknown`` (its answer was lost; the
            next refresh looks for it by name), ``Deleted`` (deleted before it finished) and
            ``Gone`` (it left the platform while nobody looked for longer than the platform
            keeps finished sessions, so how it ended is not known).
        attempt: 1 for the first launch, 2 after one re-run, ...
        started, ended: UTC datetimes (None until known).
        duration: seconds from start to end (or to now while it runs).
        reason: why it failed, in words; empty otherwise.
        earlier_ids: the session ids of its earlier attempts, oldest first.
    """

    replica: int
    id: str | None
    name: str
    status: str
    attempt: int
    started: datetime | None
    ended: datetime | None
    duration: float | None
    reason: str
    earlier_ids: tuple[str, ...]


@dataclass(frozen=True)
class ErrorRow:
    """One failed replica, for triage (:meth:`Batch.errors`)."""

    replica: int
    id: str | None
    attempt: int
    reason: str
    last_line: str


@dataclass(frozen=True)
class ReplicaUsage:
    """What one replica used over all its attempts (requested resources x wall time).

    ``estimated`` is True when an attempt had flexible resources: its request is then the
    platform's default request, not a figure it was held to.
    """

    replica: int
    attempts: int
    wall_seconds: float
    core_hours: float
    ram_gb_hours: float
    estimated: bool


@dataclass(frozen=True)
class Usage:
    """:meth:`Batch.usage`: per replica, and the total over the batch."""

    per_replica: tuple[ReplicaUsage, ...]
    attempts: int
    wall_seconds: float
    core_hours: float
    ram_gb_hours: float
    estimated: bool

    def __str__(self) -> str:
        mark = " (flexible sessions: the platform's default request)" if self.estimated else ""
        return (
            f"{len(self.per_replica)} replicas, {self.attempts} attempts, "
            f"{self.wall_seconds:.0f} s wall, {self.core_hours:.3f} core-hours, "
            f"{self.ram_gb_hours:.3f} RAM-GB-hours{mark}"
        )


@dataclass(frozen=True)
class BatchSummary:
    """One recorded batch, for :meth:`Batch.list`."""

    name: str
    created: datetime
    replicas: int
    counts: dict[str, int]
    destroyed: bool


def _utc(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc)


def _platform_status(raw: Any) -> str:
    words = str(raw or "").split()
    return _PLATFORM.get(words[0].lower(), "Pending") if words else "Pending"


def _start_time(record: Mapping[str, Any]) -> float | None:
    value = record.get("startTime")
    if not isinstance(value, str) or not value or value == "<none>":
        return None
    from canfar_widgets.models import parse_time

    parsed = parse_time(value)
    return parsed.timestamp() if parsed is not None else None


def _last_event_time(table: str) -> float | None:
    """The latest timestamp in an events table (when the job's last event happened)."""
    if not table.strip():
        return None
    from canfar_widgets.models import parse_events

    stamps = [
        t.timestamp()
        for e in parse_events(table)
        for t in (e.first_time, e.last_time)
        if t is not None
    ]
    return max(stamps) if stamps else None


def _cap(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    cut = len(data) - limit
    tail = data[cut:].decode("utf-8", "ignore")
    return (
        f"[canfar-widgets: the first {cut:,} bytes were cut; the archive keeps the last "
        f"{limit:,}]\n{tail}"
    )


def _describe(err: BaseException) -> str:
    """An error in words fit for the record: class, status and the server's text only."""
    from canfar_widgets.errors import APIError

    if isinstance(err, APIError):
        return f"{err.status_code} {err.message}".strip()
    return type(err).__name__


def _transient(err: BaseException) -> bool:
    """A failure worth polling through: the network, or the platform's 5xx."""
    from canfar_widgets.errors import APIError

    if isinstance(err, APIError):
        return err.status_code >= 500
    return isinstance(err, httpx.TransportError)


def _maybe_sent(err: BaseException | None) -> bool:
    """Whether a failed POST may still have reached the platform (its answer was lost)."""
    if err is None:
        return False
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False
    return isinstance(
        err,
        (
            httpx.ReadTimeout,
            httpx.WriteTimeout,
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
        ),
    )


def _async_session(session: Session | AsyncSession | None) -> AsyncSession:
    from canfar_widgets.sessions import AsyncSession, Session

    if session is None:
        session = Session()
    if isinstance(session, Session):
        return session.async_session
    if isinstance(session, AsyncSession):
        return session
    raise TypeError(f"session: expected a Session or an AsyncSession, not {type(session).__name__}")


def _server(session: AsyncSession) -> str:
    return session.url.rstrip("/")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return get_runner().run(coro)


def _blocking(
    twin: Callable[Concatenate[type[C], P], Coroutine[Any, Any, T]], doc: str
) -> classmethod[C, P, T]:
    """The blocking twin of an async classmethod (``launch`` of ``launch_async``).

    Why: each call has one implementation, the async one; its twin runs it on the runner
    and keeps its parameters for ``help()`` and IDEs (``functools.wraps``), with ``doc``.
    As :func:`canfar_widgets.sessions._sync` makes ``Session`` from ``AsyncSession``.

    Example:
        >>> launch = _blocking(launch_async, "Launch a batch and wait for the POSTs.")
    """
    # In the class body ``twin`` is still the classmethod object: its function is what runs.
    method: Callable[Concatenate[type[C], P], Coroutine[Any, Any, T]] = getattr(
        twin, "__func__", twin
    )

    @functools.wraps(method)
    def blocking(cls: type[C], *args: P.args, **kwargs: P.kwargs) -> T:
        return _run(method(cls, *args, **kwargs))

    blocking.__name__ = method.__name__.removesuffix("_async")
    blocking.__qualname__ = method.__qualname__.removesuffix("_async")
    blocking.__doc__ = doc
    return classmethod(blocking)


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    # The record is a file: its (short) transactions never block the runner's loop.
    return await asyncio.to_thread(fn, *args, **kwargs)


class Batch:
    """A batch of headless replicas and its record; see the module docstring.

    Make one with :meth:`launch` (a new batch) or :meth:`open` (one recorded earlier, or
    rebuilt from the platform). ``retry_delay`` is the first automatic re-run's backoff in
    seconds (doubled per attempt); ``unknown_grace`` how long a launch whose answer was lost
    is looked for by name before it counts as failed.
    """

    retry_delay: float = 10.0
    unknown_grace: float = 120.0
    poll_interval: float = 5.0

    def __init__(
        self,
        session: AsyncSession,
        record: Record,
        row: BatchRow,
        attempts: Sequence[AttemptRow],
        registry: ContainerRegistry | None = None,
    ) -> None:
        self._session = session
        self._record = record
        self._row = row
        self._registry = registry
        self._attempts: dict[int, list[AttemptRow]] = {}
        self._adopt(attempts)
        self._hooks = Hooks()
        self._refresh_lock: asyncio.Lock | None = None  # made on the runner loop, when first used

    # -- making one ------------------------------------------------------------------------

    @classmethod
    async def launch_async(
        cls,
        name: str,
        image: str,
        *,
        cmd: str | None = None,
        args: str | Sequence[str] | None = None,
        env: Mapping[str, Any] | None = None,
        replicas: int = 1,
        cores: int | None = None,
        ram: int | None = None,
        gpu: int | None = None,
        retries: int = 0,
        session: Session | AsyncSession | None = None,
        registry: ContainerRegistry | None = None,
    ) -> Batch:
        """:meth:`launch` for async code (``await Batch.launch_async(...)``)."""
        from canfar_widgets.models import CreateRequest

        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: must be a whole number >= 0, not {retries!r}")
        # Validated before anything is recorded or sent: bad input is a clear ValueError.
        request = CreateRequest(
            name=name,
            image=image,
            cores=cores,
            ram=ram,
            kind="headless",
            gpu=gpu,
            cmd=cmd,
            args=args,  # type: ignore[arg-type]
            env=env,  # type: ignore[arg-type]
            replicas=replicas,
        )
        if registry is not None and registry.header_value() is None:
            raise ValueError("registry: needs both a username and a secret")
        client = _async_session(session)
        record = Record.default()
        spec = _spec_of(request)
        total = int(request.replicas)
        now = time.time()
        first = [
            AttemptRow(replica=n, attempt=1, id=None, status=LAUNCHING, claimed=now, spec=spec)
            for n in range(1, total + 1)
        ]
        key = await _in_thread(
            record.add_batch,
            _server(client),
            name,
            total,
            retries,
            spec,
            first,
            registry_user=registry.username if registry else None,
        )
        row = await _in_thread(record.batch, key)
        batch = cls(client, record, row, first, registry)
        await get_runner().arun(batch._send(first))
        return batch

    launch = _blocking(
        launch_async,
        """Launch ``name-1..name-N`` as ``Session.create`` does, recorded before the first POST.

        ``retries=N`` re-runs a failed replica automatically up to N times (with backoff)
        while some process has the batch open (``refresh``/``wait``); never one the user
        deleted. ``registry`` credentials are used, never recorded (only the username is).

        Example:
            >>> batch = Batch.launch("scan", "skaha/astroml", cmd="python",
            ...                      args="/arc/home/me/scan.py", replicas=12, retries=2)
        """,
    )

    @classmethod
    def open(cls, name: str, session: Session | AsyncSession | None = None) -> Batch:
        """The newest batch of that name on this server, from the record.

        Without a record it is rebuilt from the platform's sessions named ``name-<n>``
        (newest per replica), recorded, and a warning says so. A fresh :meth:`refresh`
        has been done either way.

        Raises:
            LookupError: neither a record nor sessions of that name.

        Example:
            >>> batch = Batch.open("scan")      # in a restarted kernel
            >>> batch.counts
        """
        return _run(cls.open_async(name, session))

    @classmethod
    async def open_async(
        cls,
        name: str,
        session: Session | AsyncSession | None = None,
    ) -> Batch:
        """:meth:`open` for async code."""
        client = _async_session(session)
        record = Record.default()
        row = await _in_thread(record.newest, _server(client), name)
        if row is None:
            import warnings

            batch, message = await get_runner().arun(cls._rebuild(client, record, name))
            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            attempts = await _in_thread(record.attempts, row.key)
            batch = cls(client, record, row, attempts)
        await batch.refresh_async()
        return batch

    @classmethod
    async def _rebuild(
        cls,
        client: AsyncSession,
        record: Record,
        name: str,
    ) -> tuple[Batch, str]:
        import re

        listing = await client.fetch()
        pattern = re.compile(rf"^{re.escape(name)}-(\d+)$")
        newest: dict[int, dict[str, Any]] = {}
        for item in listing:
            match = pattern.match(str(item.get("name", "")))
            if not match or "id" not in item or int(match.group(1)) < 1:
                continue
            replica = int(match.group(1))
            seen = newest.get(replica)
            if seen is None or (_start_time(item) or 0) >= (_start_time(seen) or 0):
                newest[replica] = item
        if not newest:  # a batch of one replica is named without a suffix
            alone = [i for i in listing if i.get("name") == name and "id" in i]
            if alone:
                newest[1] = max(alone, key=lambda i: _start_time(i) or 0)
        if not newest:
            raise LookupError(
                f"no batch named {name!r} in the record ({record.path}) and no sessions "
                f"named {name}-<n> on {_server(client)}"
            )
        total = max(newest)
        sample = newest[min(newest)]
        spec: dict[str, Any] = {
            "name": name,
            "image": sample.get("image"),
            "cores": None,
            "ram": None,
            "kind": sample.get("type") or "headless",
            "gpu": None,
            "cmd": None,
            "args": None,
            "env": None,
        }
        now = time.time()
        attempts = []
        for replica in range(1, total + 1):
            found = newest.get(replica)
            if found is None:
                attempts.append(
                    AttemptRow(
                        replica=replica,
                        attempt=1,
                        id=None,
                        status="Failed",
                        claimed=now,
                        spec=spec,
                        ended=now,
                        reason="no session of this replica was found",
                    )
                )
                continue
            attempts.append(
                AttemptRow(
                    replica=replica,
                    attempt=1,
                    id=str(found["id"]),
                    status=_platform_status(found.get("status")),
                    claimed=now,
                    spec=spec,
                    started=_start_time(found),
                )
            )
        key = await _in_thread(
            record.add_batch, _server(client), name, total, 0, spec, attempts, spec_known=False
        )
        row = await _in_thread(record.batch, key)
        message = (
            f"no record of batch {name!r} on {_server(client)}: rebuilt from the platform's "
            f"{len(newest)} sessions named {name}-<n> (its cmd, args and env are not known; "
            "rerun() needs them)"
        )
        return cls(client, record, row, attempts), message

    @classmethod
    def list(cls, session: Session | AsyncSession | None = None) -> builtins.list[BatchSummary]:
        """The recorded batches of this server, newest first (from the record only).

        Example:
            >>> [(b.name, b.replicas, b.counts) for b in Batch.list()]
            [('scan', 12, {'Completed': 12})]
        """
        client = _async_session(session)
        record = Record.default()
        summaries = []
        for row in record.batches(_server(client)):
            current = _current(record.attempts(row.key))
            summaries.append(
                BatchSummary(
                    name=row.name,
                    created=_utc(row.created) or datetime.now(timezone.utc),
                    replicas=row.total,
                    counts=_counts(a.status for a in current.values()),
                    destroyed=row.destroyed is not None,
                )
            )
        return summaries

    # -- what it is --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._row.name

    @property
    def server(self) -> str:
        """The API base URL this batch runs on (the record's key, with the name)."""
        return self._row.server

    @property
    def created(self) -> datetime:
        return _utc(self._row.created) or datetime.now(timezone.utc)

    @property
    def total(self) -> int:
        """How many replicas (``REPLICA_COUNT``)."""
        return self._row.total

    @property
    def retries(self) -> int:
        return self._row.retries

    @property
    def replicas(self) -> builtins.list[Replica]:
        """One :class:`Replica` per replica number, as of the last refresh."""
        return [self._replica(n) for n in sorted(self._attempts)]

    @property
    def counts(self) -> dict[str, int]:
        """How many replicas have each status, e.g. ``{'Running': 4, 'Completed': 8}``."""
        return _counts(a[-1].status for a in self._attempts.values())

    @property
    def done(self) -> builtins.list[Replica]:
        """The replicas that completed."""
        return [r for r in self.replicas if r.status == "Completed"]

    @property
    def failed(self) -> builtins.list[Replica]:
        """The replicas that failed or were deleted before finishing."""
        return [r for r in self.replicas if r.status in ("Failed", DELETED)]

    @property
    def finished(self) -> bool:
        """True when no replica will change any more (nothing running, no re-run due)."""
        return all(self._settled(a[-1]) for a in self._attempts.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"<Batch {self.name!r} {self.total} replicas: {counts}>"

    def _replica(self, number: int) -> Replica:
        attempts = self._attempts[number]
        current = attempts[-1]
        end = current.ended
        duration = None
        if current.started is not None:
            stop = end if end is not None else (time.time() if current.status in ACTIVE else None)
            duration = max(0.0, stop - current.started) if stop is not None else None
        return Replica(
            replica=number,
            id=current.id,
            name=self._name_of(number),
            status=current.status,
            attempt=current.attempt,
            started=_utc(current.started),
            ended=_utc(end),
            duration=duration,
            reason=current.reason,
            earlier_ids=tuple(a.id for a in attempts[:-1] if a.id),
        )

    def _name_of(self, number: int) -> str:
        return self.name if self.total == 1 else f"{self.name}-{number}"

    def _adopt(self, attempts: Iterable[AttemptRow]) -> None:
        grouped: dict[int, list[AttemptRow]] = {}
        for attempt in sorted(attempts, key=lambda a: (a.replica, a.attempt)):
            grouped.setdefault(attempt.replica, []).append(attempt)
        self._attempts = grouped

    def _settled(self, attempt: AttemptRow) -> bool:
        if attempt.status not in FINAL:
            return False
        return not self._retry_due_later(attempt)

    def _retry_allowed(self, attempt: AttemptRow) -> bool:
        # Not without the registry credentials it needs (a kernel that re-opened a private
        # image's batch has only the username): rerun(registry=...) is for that.
        return (
            attempt.status == "Failed"
            and not attempt.deleted
            and self._row.destroyed is None
            and attempt.attempt <= self._row.retries
            and self._row.spec_known
            and (self._row.registry_user is None or self._registry is not None)
        )

    def _retry_due_later(self, attempt: AttemptRow) -> bool:
        return self._retry_allowed(attempt)

    def _retry_at(self, attempt: AttemptRow) -> float:
        ended = attempt.ended if attempt.ended is not None else attempt.claimed
        return ended + self.retry_delay * 2 ** (attempt.attempt - 1)

    # -- following it ------------------------------------------------------------------------

    def on_finished(self, fn: Callable[[Batch], Any]) -> Callable[[Batch], Any]:
        """Call ``fn(batch)`` once when the batch finishes (again after a re-run finishes).

        Runs on the thread that registered it, never on the runner thread that polls: in a
        Jupyter kernel, the kernel's main thread (between cells, or inside ``wait()``); in a
        script, inside ``wait()``/``refresh()``. So a slow callback stalls no widget, and a
        sync ``Session`` call inside one works. Registered on a batch already finished, it
        is called after the next refresh. Returns ``fn`` (usable as a decorator).

        Example:
            >>> batch.on_finished(lambda b: print("done:", b.counts))
            >>> batch.wait()
            done: {'Completed': 8, 'Failed': 4}
        """
        self._hooks.add("finished", fn)
        return fn

    def on_failed(self, fn: Callable[[Replica], Any]) -> Callable[[Replica], Any]:
        """Call ``fn(replica)`` once per failed attempt of a replica (on the same thread as
        :meth:`on_finished`); replicas that failed before it was registered are reported too.

        Example:
            >>> @batch.on_failed
            ... def tell(replica):
            ...     print(replica.name, replica.reason)
        """
        self._hooks.add("failed", fn)
        return fn

    def refresh(self) -> builtins.list[Replica]:
        """Poll the platform once (one list request), archive what finished, re-run what is due.

        Returns the replicas. Replicas that finished since the last refresh cost two more
        requests each, once: their logs and events are archived in the record.
        """
        replicas = _run(self.refresh_async())
        self._hooks.drain()  # callbacks registered on this thread run here (a script)
        return replicas

    async def refresh_async(self) -> builtins.list[Replica]:
        """:meth:`refresh` for async code."""
        await get_runner().arun(self._refresh())
        return self.replicas

    async def _refresh(self, listing: Sequence[Mapping[str, Any]] | None = None) -> set[str]:
        """One refresh at a time (a widget's poll and a ``wait()`` may overlap).

        ``listing``: the platform's session list when the caller already has it (a widget
        on the shared session feed), so no second list request is made.
        """
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            present = await self._refresh_once(listing)
        if self._hooks:
            failed = [
                self._replica(n) for n, h in self._attempts.items() if h[-1].status == "Failed"
            ]
            self._hooks.note(failed, self.finished, self)
        return present

    async def _refresh_once(self, listing: Sequence[Mapping[str, Any]] | None) -> set[str]:
        kind: Any = self._row.spec.get("kind") or "headless"
        if listing is None:
            listing = await self._session.fetch(kind=kind)
        else:
            listing = [item for item in listing if item.get("type") in (None, kind)]
        by_id = {str(item["id"]): item for item in listing if "id" in item}
        attempts = await _in_thread(self._record.attempts, self._row.key)
        self._row = await _in_thread(self._record.batch, self._row.key)
        self._adopt(attempts)
        now = time.time()
        known: set[str] | None = None
        to_archive: builtins.list[AttemptRow] = []
        for history in self._attempts.values():
            current = history[-1]
            if current.id is None and current.status in (LAUNCHING, UNKNOWN):
                if known is None:
                    known = await _in_thread(self._record.known_ids, self._row.server)
                self._reconcile(current, listing, known, now)
            if current.status == DELETED and not current.deleted and current.id in by_id:
                # Listed again after it seemed gone (a listing that lagged): follow it again.
                current.update(status="Pending", ended=None, reason="")
            if current.id is None or current.status in FINAL:
                if (
                    current.status in ("Completed", "Failed")
                    and not current.archived
                    and current.id in by_id
                ):
                    to_archive.append(current)
                continue
            item = by_id.get(current.id)
            if item is None:
                if current.seen is None and now - current.claimed < LIST_GRACE:
                    continue  # just created: the listing may not show it yet
                seen = current.seen if current.seen is not None else current.claimed
                if current.status == "Terminating" or now - seen < CLEANUP_DELAY:
                    # Gone before it finished, too soon to be the platform's cleanup: deleted.
                    current.update(status=DELETED, ended=now, reason=_reasons.DELETED)
                else:
                    current.update(
                        status=GONE,
                        reason=(
                            "it left the platform while not watched: finished and cleaned up, "
                            "or deleted"
                        ),
                    )
                continue
            status = _platform_status(item.get("status"))
            if _RANK[status] < _RANK.get(current.status, 0):
                status = current.status  # an older listing (another kernel's) never goes back
            started = current.started if current.started is not None else _start_time(item)
            current.update(status=status, started=started)
            if current.seen is None or now - current.seen > 60:
                current.update(seen=now)
            if status in ("Completed", "Failed"):
                current.update(ended=now)
                if status == "Failed":
                    current.update(reason=_reasons.classify(str(item.get("status") or "")))
                to_archive.append(current)
        if to_archive:
            await self._archive(to_archive)
        await _in_thread(self._record.save, self._row.key, attempts)
        await self._retry_due(now)
        return set(by_id)

    def _reconcile(
        self, attempt: AttemptRow, listing: Sequence[Mapping[str, Any]], known: set[str], now: float
    ) -> None:
        """Find a launch whose answer was lost by its name; give up after ``unknown_grace``."""
        name = self._name_of(attempt.replica)
        candidates = [
            item
            for item in listing
            if item.get("name") == name and "id" in item and str(item["id"]) not in known
        ]
        if candidates:
            item = max(candidates, key=lambda i: _start_time(i) or 0)
            status = _platform_status(item.get("status"))
            attempt.update(id=str(item["id"]), status=status, started=_start_time(item), seen=now)
            if status in ("Completed", "Failed"):
                attempt.update(ended=now)
            known.add(str(item["id"]))
            return
        age = now - attempt.claimed
        if attempt.status == LAUNCHING and age > self.unknown_grace:
            attempt.update(status=UNKNOWN)  # the process that claimed it never said
        elif attempt.status == UNKNOWN and age > self.unknown_grace:
            attempt.update(
                status="Failed", ended=now, reason=_reasons.classify("Failed", lost=True)
            )

    async def _archive(self, attempts: Sequence[AttemptRow]) -> None:
        """Keep the logs and events of these attempts in the record (capped, tail kept)."""
        ids = [a.id for a in attempts if a.id]
        logs = await self._session.logs(ids, errors="ignore") or {}
        events_list = await self._session.events(ids, errors="ignore") or []
        events: dict[str, str] = {}
        for item in events_list:
            events.update(item)
        for attempt in attempts:
            assert attempt.id is not None
            if attempt.id not in logs:
                continue  # the log could not be read now: the next refresh tries again
            text = logs[attempt.id]
            table = events.get(attempt.id, "")
            attempt.update(logs=_cap(text, LOG_CAP), events=_cap(table, EVENTS_CAP))
            end = _last_event_time(table)
            if (
                end is not None
                and attempt.ended is not None
                and attempt.started is not None
                and attempt.started <= end <= attempt.ended
            ):
                attempt.update(ended=end)  # the platform's own time, not when we looked
            if attempt.status == "Failed":
                attempt.update(
                    reason=_reasons.classify("Failed", table, text, deleted=attempt.deleted),
                    last_line=_reasons.last_error_line(text),
                )
            elif attempt.deleted:
                attempt.update(last_line=_reasons.last_error_line(text))

    async def _retry_due(self, now: float) -> None:
        due = [
            h[-1].replica
            for h in self._attempts.values()
            if self._retry_allowed(h[-1]) and self._retry_at(h[-1]) <= now
        ]
        if due:
            await self._relaunch(due, {}, self._registry)

    def wait(
        self,
        timeout: float | None = None,
        *,
        interval: float | None = None,
    ) -> builtins.list[Replica]:
        """Refresh until every replica has finished (re-runs included); returns the replicas.

        Ctrl-C (or a kernel interrupt) stops the waiting, not the jobs, and says so.

        Raises:
            TimeoutError: after ``timeout`` seconds, naming the replicas not finished.

        Example:
            >>> replicas = batch.wait(timeout=3600)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        owner = threading.current_thread() is self._hooks.thread
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                replicas = _run(self._wait(left, interval, yield_to_hooks=owner))
                self._hooks.drain()  # on_failed/on_finished registered on this thread
                if replicas is not None:
                    return replicas
        except KeyboardInterrupt:
            print(self._interrupted(), file=sys.stderr)
            raise

    async def wait_async(
        self,
        timeout: float | None = None,
        *,
        interval: float | None = None,
    ) -> builtins.list[Replica]:
        """:meth:`wait` for async code; cancelling it stops the waiting, not the jobs."""
        try:
            replicas = await get_runner().arun(self._wait(timeout, interval))
            assert replicas is not None  # only a yield_to_hooks wait returns early
            return replicas
        except asyncio.CancelledError:
            print(self._interrupted(), file=sys.stderr)
            raise

    def _interrupted(self) -> str:
        return (
            f"stopped waiting for batch {self.name!r}; its replicas keep running on the "
            f"platform (Batch.open({self.name!r}) finds them again)"
        )

    async def _wait(
        self, timeout: float | None, interval: float | None, yield_to_hooks: bool = False
    ) -> builtins.list[Replica] | None:
        """Refresh until finished. ``yield_to_hooks``: return None as soon as callbacks are
        queued, so the (sync) caller runs them on its thread and calls again."""
        step = self.poll_interval if interval is None else float(interval)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        failures = 0
        while True:
            try:
                await self._refresh()
                failures = 0
            except httpx.HTTPError as err:
                # A long wait outlives a platform hiccup (5xx, a dropped connection); a
                # refusal (401, 403...) or a hiccup that does not go away is raised.
                failures += 1
                if not _transient(err) or failures >= _WAIT_FAILURES:
                    raise
                log.warning(
                    "batch %r: refresh failed (%s); trying again", self.name, _describe(err)
                )
            if failures == 0 and self.finished:
                return self.replicas
            if yield_to_hooks and self._hooks.queued():
                return None
            pause = step
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    waiting = [
                        r.replica
                        for r in self.replicas
                        if not self._settled(self._attempts[r.replica][-1])
                    ]
                    raise TimeoutError(
                        f"batch {self.name!r}: replicas {waiting} not finished after {timeout:g} s"
                    )
                pause = min(step, left)
            # Sleep no longer than the next automatic re-run is due.
            due = [
                self._retry_at(h[-1]) for h in self._attempts.values() if self._retry_allowed(h[-1])
            ]
            if due:
                pause = max(0.05, min(pause, min(due) - time.time()))
            await asyncio.sleep(pause)

    # -- re-running ---------------------------------------------------------------------------

    def rerun(
        self,
        replicas: Iterable[int] | None = None,
        *,
        registry: ContainerRegistry | None = None,
        **changes: Any,
    ) -> builtins.list[Replica]:
        """Re-launch the failed replicas (or these numbers) as themselves; returns those launched.

        Each keeps its name ``<batch>-<n>``, ``REPLICA_ID=n`` and ``REPLICA_COUNT``; the spec
        is its last attempt's, with ``changes`` applied: ``env`` (merged), ``cores``, ``ram``,
        ``gpu``, ``cmd``, ``args``, ``image``. Each re-run is claimed in the record before its
        POST, so two kernels re-running the same batch make one new session per replica.
        A replica still running, or whose launch outcome is unknown, is not re-run.

        Example:
            >>> batch.rerun()                        # every failed replica
            >>> batch.rerun([6], ram=16)             # replica 6, with more memory
        """
        return _run(self.rerun_async(replicas, registry=registry, **changes))

    async def rerun_async(
        self,
        replicas: Iterable[int] | None = None,
        *,
        registry: ContainerRegistry | None = None,
        **changes: Any,
    ) -> builtins.list[Replica]:
        """:meth:`rerun` for async code."""
        unknown = sorted(set(changes) - set(_CHANGEABLE))
        if unknown:
            raise TypeError(
                f"rerun: cannot change {', '.join(unknown)}; only {', '.join(_CHANGEABLE)}"
            )
        chosen = None if replicas is None else _numbers(replicas, self.total)
        return await get_runner().arun(self._rerun(chosen, changes, registry))

    async def _rerun(
        self,
        chosen: builtins.list[int] | None,
        changes: dict[str, Any],
        registry: ContainerRegistry | None,
    ) -> builtins.list[Replica]:
        if not self._row.spec_known and "cmd" not in changes:
            raise ValueError(
                f"batch {self.name!r} was rebuilt from the platform, which does not say its "
                "cmd, args or env: pass cmd= (and args=, env=) to rerun"
            )
        await self._refresh()
        if chosen is None:
            chosen = [n for n, h in self._attempts.items() if h[-1].status == "Failed"]
        else:
            for number in chosen:
                status = self._attempts[number][-1].status
                if status not in FINAL:
                    raise ValueError(
                        f"replicas: replica {number} is {status}; only a finished replica is "
                        "re-run (an Unknown one may still exist: refresh() looks for it)"
                    )
        if registry is not None:
            self._registry = registry  # kept in memory (never recorded) for later re-runs
        launched = await self._relaunch(chosen, changes, self._registry)
        return [self._replica(n) for n in launched]

    async def _relaunch(
        self, numbers: Sequence[int], changes: Mapping[str, Any], registry: ContainerRegistry | None
    ) -> builtins.list[int]:
        if not numbers:
            return []
        if self._row.registry_user and registry is None:
            raise ValueError(
                f"batch {self.name!r} was launched with registry credentials for user "
                f"{self._row.registry_user!r}: pass registry=ContainerRegistry(...) to re-run"
            )
        wanted = {n: self._attempts[n][-1].attempt for n in numbers}
        specs = {n: _changed(self._attempts[n][-1].spec, changes) for n in numbers}
        for spec in {repr(s): s for s in specs.values()}.values():
            _request(spec, self.total)  # validate before claiming anything
        claimed = await _in_thread(self._record.claim, self._row.key, wanted, specs)
        for attempt in claimed:
            self._attempts[attempt.replica].append(attempt)
        if claimed:
            await self._send(claimed, registry)
        return [a.replica for a in claimed]

    async def _send(
        self, attempts: Sequence[AttemptRow], registry: ContainerRegistry | None = None
    ) -> None:
        """POST claimed attempts (grouped by spec) and record each outcome."""
        registry = registry or self._registry
        groups: dict[str, list[AttemptRow]] = {}
        for attempt in attempts:
            groups.setdefault(repr(sorted(attempt.spec.items())), []).append(attempt)
        try:
            for group in groups.values():
                request = _request(group[0].spec, self.total)
                outcomes = await self._session.launch_replicas(
                    request, [a.replica for a in group], total=self.total, registry=registry
                )
                by_replica = {o.replica: o for o in outcomes}
                for attempt in group:
                    outcome = by_replica.get(attempt.replica)
                    if outcome is None:
                        attempt.update(status=UNKNOWN)
                    elif outcome.id is not None:
                        attempt.update(id=outcome.id, status="Pending")
                    elif outcome.unknown or _maybe_sent(outcome.error):
                        attempt.update(status=UNKNOWN)
                    else:
                        error = outcome.error
                        words = _describe(error) if error is not None else "no id returned"
                        attempt.update(
                            status="Failed", ended=time.time(), reason=f"{LAUNCH_REFUSED}: {words}"
                        )
        except BaseException:
            # Interrupted mid-POST: whatever was not answered may exist. Say so, never lose it.
            for attempt in attempts:
                if attempt.status == LAUNCHING:
                    attempt.update(status=UNKNOWN)
            await asyncio.shield(_in_thread(self._record.save, self._row.key, attempts))
            raise
        await _in_thread(self._record.save, self._row.key, attempts)

    # -- logs, events, triage, usage, outputs ------------------------------------------------

    def logs(self, replicas: Iterable[int] | None = None) -> dict[int, str]:
        """``{replica: log text}`` of the current attempts: live while the session exists,
        from the archive after (so after :meth:`destroy` and the platform's cleanup too).

        Example:
            >>> print(batch.logs([3])[3])
        """
        return _run(self._texts("logs", replicas))

    def events(self, replicas: Iterable[int] | None = None) -> dict[int, str]:
        """``{replica: events table}`` (kubectl's table), live or archived as :meth:`logs`."""
        return _run(self._texts("events", replicas))

    async def _texts(self, view: str, replicas: Iterable[int] | None) -> dict[int, str]:
        numbers = sorted(self._attempts) if replicas is None else _numbers(replicas, self.total)
        texts: dict[int, str] = {}
        live: dict[str, int] = {}
        for number in numbers:
            current = self._attempts[number][-1]
            archived = None
            if current.archived:
                archived = await _in_thread(
                    self._record.text, self._row.key, number, current.attempt, view
                )
            if archived is not None:
                texts[number] = archived
            elif current.id is not None and current.status != DELETED:
                live[current.id] = number
            else:
                texts[number] = ""
        if live:
            ids = list(live)
            if view == "logs":
                fetched = await self._session.logs(ids, errors="ignore") or {}
            else:
                fetched = {}
                for item in await self._session.events(ids, errors="ignore") or []:
                    fetched.update(item)
            for key, number in live.items():
                texts[number] = fetched.get(key, "")
        return {n: texts[n] for n in numbers}

    def errors(self) -> builtins.list[ErrorRow]:
        """One row per failed (or deleted) replica: replica, id, attempt, reason, last error line.

        Example:
            >>> for row in batch.errors():
            ...     print(f"{row.replica:>3} {row.reason:<20} {row.last_line}")
              3 non-zero exit        ValueError: bad frame 0017
        """
        rows = []
        for number in sorted(self._attempts):
            current = self._attempts[number][-1]
            if current.status in ("Failed", DELETED):
                rows.append(
                    ErrorRow(
                        replica=number,
                        id=current.id,
                        attempt=current.attempt,
                        reason=current.reason or _reasons.NON_ZERO_EXIT,
                        last_line=current.last_line,
                    )
                )
        return rows

    def usage(self) -> Usage:
        """Wall time, attempts and requested core-hours and RAM-GB-hours, per replica and total.

        A flexible session (no ``cores``/``ram``) counts the platform's default request
        (``GET context``), and the figure is marked ``estimated``.

        Example:
            >>> print(batch.usage())
            12 replicas, 16 attempts, 3120 s wall, 0.867 core-hours, 3.467 RAM-GB-hours
        """
        return _run(self._usage())

    async def _usage(self) -> Usage:
        defaults: tuple[float, float] | None = None
        flexible = any(
            a.spec.get("cores") is None or a.spec.get("ram") is None
            for h in self._attempts.values()
            for a in h
        )
        if flexible:
            context = await get_runner().arun(self._session.context())
            defaults = (
                float(context.cores.defaultRequest or context.cores.default or 1),
                float(context.memoryGB.defaultRequest or context.memoryGB.default or 1),
            )
        now = time.time()
        rows = []
        for number in sorted(self._attempts):
            wall = cores_h = ram_h = 0.0
            estimated = False
            for attempt in self._attempts[number]:
                if attempt.started is None:
                    continue
                stop = (
                    attempt.ended
                    if attempt.ended is not None
                    else (now if attempt.status in ACTIVE else attempt.started)
                )
                seconds = max(0.0, stop - attempt.started)
                cores, ram = attempt.spec.get("cores"), attempt.spec.get("ram")
                if cores is None or ram is None:
                    estimated = True
                    assert defaults is not None
                cores = float(cores) if cores is not None else defaults[0]  # type: ignore[index]
                ram = float(ram) if ram is not None else defaults[1]  # type: ignore[index]
                wall += seconds
                cores_h += cores * seconds / 3600
                ram_h += ram * seconds / 3600
            rows.append(
                ReplicaUsage(
                    replica=number,
                    attempts=len(self._attempts[number]),
                    wall_seconds=wall,
                    core_hours=cores_h,
                    ram_gb_hours=ram_h,
                    estimated=estimated,
                )
            )
        return Usage(
            per_replica=tuple(rows),
            attempts=sum(r.attempts for r in rows),
            wall_seconds=sum(r.wall_seconds for r in rows),
            core_hours=sum(r.core_hours for r in rows),
            ram_gb_hours=sum(r.ram_gb_hours for r in rows),
            estimated=any(r.estimated for r in rows),
        )

    def outputs(self, pattern: str, root: str | None = None) -> Outputs:
        """The files each replica wrote: ``pattern`` has ``{replica}`` (``{replica:02d}``...)
        and glob characters. Returns the files per replica and the replicas with none.

        Paths under ``/arc`` resolve where this runs: inside a CANFAR session /arc is mounted;
        next to a local platform it is that platform's storage root; ``root=`` overrides.

        Example:
            >>> out = batch.outputs("/arc/home/me/scan/frame-{replica:02d}-*.fits")
            >>> out.missing
            [4, 7]
        """
        return find_outputs(pattern, sorted(self._attempts), root=root, server=self.server)

    # -- ending it -------------------------------------------------------------------------------

    def destroy(self) -> dict[int, bool]:
        """Archive every replica's logs and events, then delete every session of the batch.

        Returns ``{replica: deleted?}`` for the replicas that had a session on the platform.
        The record stays: :meth:`open`, :meth:`logs` and :meth:`errors` still work.
        """
        return _run(self._destroy())

    async def destroy_async(self) -> dict[int, bool]:
        """:meth:`destroy` for async code."""
        return await get_runner().arun(self._destroy())

    async def _destroy(self) -> dict[int, bool]:
        await _in_thread(self._record.mark_destroyed, self._row.key)  # no re-run from now on
        present = await self._refresh()
        attempts = [a for h in self._attempts.values() for a in h]
        live = [
            h[-1]
            for h in self._attempts.values()
            if h[-1].id in present and h[-1].status not in FINAL
        ]
        for attempt in live:
            attempt.update(deleted=True)
        unarchived = [
            h[-1] for h in self._attempts.values() if h[-1].id in present and not h[-1].archived
        ]
        if unarchived:
            await self._archive(unarchived)
        for attempt in live:
            attempt.update(status=DELETED, ended=time.time(), reason=_reasons.DELETED)
        await _in_thread(self._record.save, self._row.key, attempts)
        owned = {a.id: a.replica for a in attempts if a.id in present}
        if not owned:
            return {}
        result = await self._session.destroy(list(owned), errors="ignore")
        deleted: dict[int, bool] = {}
        for key, ok in result.items():
            replica = owned[key]
            deleted[replica] = deleted.get(replica, True) and ok
        return dict(sorted(deleted.items()))

    # -- tables ------------------------------------------------------------------------------------

    def to_pandas(self) -> Any:
        """The replicas as a ``pandas.DataFrame`` (one row per replica).

        Raises:
            ImportError: pandas is not installed; ``pip install "canfar-widgets[pandas]"``.
        """
        try:
            import pandas
        except ImportError as err:
            raise ImportError(
                'Batch.to_pandas() needs pandas: pip install "canfar-widgets[pandas]"'
            ) from err
        rows = [asdict(r) for r in self.replicas]
        for row in rows:
            row["earlier_ids"] = list(row["earlier_ids"])
        return pandas.DataFrame(rows, columns=[f for f in Replica.__dataclass_fields__])


# -- helpers -------------------------------------------------------------------------------------


def _spec_of(request: CreateRequest) -> dict[str, Any]:
    data = {key: getattr(request, key) for key in _SPEC_KEYS}
    data["env"] = dict(request.env) if request.env else None
    return data


def _request(spec: Mapping[str, Any], total: int) -> CreateRequest:
    from canfar_widgets.models import CreateRequest

    fields: dict[str, Any] = {key: spec.get(key) for key in _SPEC_KEYS}
    return CreateRequest(**fields, replicas=total)


def _changed(spec: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    updated = dict(spec)
    for key, value in changes.items():
        if key == "env":
            if value is not None and not isinstance(value, Mapping):
                raise ValueError("env: must be a mapping of names to values")
            merged = dict(spec.get("env") or {})
            merged.update({str(k): f"{v}" for k, v in (value or {}).items()})
            updated["env"] = merged or None
        elif key == "args" and isinstance(value, (list, tuple)):
            updated["args"] = " ".join(str(v) for v in value)
        else:
            updated[key] = value
    return updated


def _numbers(replicas: Iterable[int], total: int) -> list[int]:
    if isinstance(replicas, int):
        replicas = [replicas]
    numbers = []
    for value in replicas:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= total:
            raise ValueError(f"replicas: {value!r} is not a replica number (1 to {total})")
        numbers.append(value)
    return sorted(set(numbers))


def _current(attempts: Iterable[AttemptRow]) -> dict[int, AttemptRow]:
    current: dict[int, AttemptRow] = {}
    for attempt in attempts:
        seen = current.get(attempt.replica)
        if seen is None or attempt.attempt > seen.attempt:
            current[attempt.replica] = attempt
    return current


def _counts(statuses: Iterable[str]) -> dict[str, int]:
    counted = Counter(statuses)
    ordered = {s: counted.pop(s) for s in _ORDER if s in counted}
    ordered.update(sorted(counted.items()))
    return ordered
