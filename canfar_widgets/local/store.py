"""Session state: ids, the status machine, timers, listings, stats.

Everything here runs on the platform's event loop thread, so no lock is needed and none is
ever held across I/O. Status changes are driven by loop timers (start delay, expiry,
finished TTL) and by headless processes exiting.

Lifecycle (what a client polling the API sees):

* interactive: ``Pending`` -> (``start_delay``) ``Running`` -> past expiry ``Failed``;
* headless: ``Pending`` until the node has room for its request (``FailedScheduling``
  events meanwhile; oldest first once room frees) -> (``headless_start_delay``) ``Running``
  while the process runs -> ``Completed`` (exit 0) or ``Failed`` (non-zero exit, signal,
  cannot exec, over its memory limit: ``OOMKilled``, past expiry: ``DeadlineExceeded``);
* delete: the session is gone at once (404), as the Job object is on the server; its process
  group is still killed (SIGTERM, SIGKILL after ``kill_grace``) and holds its capacity until
  it is gone; finished sessions disappear after the finished TTL.

Every change is written to ``<workdir>/state.sqlite3`` (:mod:`canfar_widgets.local.state`),
so a platform restarted on the same workdir lists the earlier sessions (:meth:`restore`).

Example (on the platform loop):
    >>> store = SessionStore(settings, workdir, base_url="http://127.0.0.1:8080")
    >>> record = store.create(user, spec)          # doctest: +SKIP
    >>> store.listing(user, None, None, None)      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import string
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from canfar_widgets.local import jobs as jobs_mod
from canfar_widgets.local import proc
from canfar_widgets.local.catalog import SESSION_KINDS
from canfar_widgets.local.errors import bad_request, not_found
from canfar_widgets.local.faults import Faults
from canfar_widgets.local.formats import (
    GIB_IN_GB,
    decimal_g,
    gson_pretty,
    join_items,
    kubectl_table,
)
from canfar_widgets.local.identity import User
from canfar_widgets.local.jobs import Job, delete_log
from canfar_widgets.local.records import (
    ACTIVE,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    TERMINATING,
    StoredSession,
)
from canfar_widgets.local.settings import Settings
from canfar_widgets.local.state import StateFile
from canfar_widgets.local.storage import Storage
from canfar_widgets.local.supervisor import Supervisor
from canfar_widgets.local.validation import CreateSpec

__all__ = ["SessionStore"]

log = logging.getLogger("canfar_widgets.local")

_FIRST = string.ascii_lowercase
_REST = string.ascii_lowercase + string.digits
_POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' random-name alphabet
_EVENT_HEADER = ("TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME")
_RETRY = 1.0  # seconds between scheduling attempts while jobs wait (the kube-scheduler retries)
_FLUSH = 0.05  # seconds: changes within this window are written in one transaction
_CORDONED = "0/1 nodes are available: 1 node(s) were unschedulable."
# connectURL path per kind (SessionURLBuilder shapes, served by this platform itself)
_URL_PATHS: dict[str, str] = {
    "desktop": "/session/desktop/{id}/?password={id}&path=session/desktop/{id}/",
    "notebook": "/session/notebook/{id}/lab/tree/home/{user}?token={id}",
    "carta": "/session/carta/{id}/",
    "contributed": "/session/contrib/{id}/",
    "firefly": "/session/firefly/{id}/firefly/",
}
# URL path segment -> kind, for the session pages
URL_KINDS = {
    "desktop": "desktop",
    "notebook": "notebook",
    "carta": "carta",
    "contrib": "contributed",
    "firefly": "firefly",
}


def _random_id(length: int) -> str:
    """A letter then ``length - 1`` letters or digits, uniformly, from one random draw.

    Why one draw: each ``secrets.choice`` is a system call, and eight per create were a
    tenth of the platform's time in a burst of creates.
    """
    n = secrets.randbelow(len(_FIRST) * len(_REST) ** (length - 1))
    rest = []
    for _ in range(length - 1):
        n, digit = divmod(n, len(_REST))
        rest.append(_REST[digit])
    return _FIRST[n] + "".join(rest)


class SessionStore:
    """All sessions of all users, and what happens to them over time."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        *,
        base_url: str,
        faults: Faults | None = None,
        storage: Storage | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.faults = faults or Faults()
        self.workdir = workdir
        self.base_url = base_url
        self.storage = storage or Storage.prepare(workdir / "arc", mount=False)
        self.supervisor = supervisor
        self.node = socket.gethostname() or "localhost"
        self._records: dict[str, StoredSession] = {}  # session id -> session
        self._apps: dict[tuple[str, str], StoredSession] = {}  # (session id, app id) -> app
        self._sorted: list[StoredSession] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pulled: set[str] = set()
        self._closing = False
        self._sampler: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()
        # capacity: jobs waiting for room (oldest first), and jobs holding their request
        self._queue: list[StoredSession] = []
        self._holding: set[StoredSession] = set()
        self._kick_handle: asyncio.Handle | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._memory_handle: asyncio.TimerHandle | None = None
        # persistence: records to write (key -> record, None = delete) in the next flush
        self.state = StateFile(workdir / "state.sqlite3")
        self._dirty: dict[str, StoredSession | None] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self.boot = proc.boot_id()
        self.python_shim = jobs_mod.python_shim(workdir / "bin")
        if settings.metrics_interval > 0:
            self._sampler = self.loop.call_later(settings.metrics_interval, self._sample)

    # ================================================================== queries
    def _ordered(self) -> list[StoredSession]:
        # The server lists in Kubernetes Job order, i.e. by job name.
        if self._sorted is None:
            self._sorted = sorted(self._records.values(), key=lambda r: r.job_name)
        return self._sorted

    def find(self, user: str, session_id: str) -> StoredSession | None:
        """The caller's session with that id, or None (another user's counts as unknown)."""
        record = self._records.get(session_id)
        return record if record is not None and record.userid == user else None

    def lookup(self, session_id: str) -> StoredSession | None:
        """Any user's session by id (the session pages are not per-user API calls)."""
        return self._records.get(session_id)

    def first(self, user: str) -> StoredSession | None:
        """The caller's first session: what ``GET /session/`` (blank id) answers on the server."""
        return next((r for r in self._ordered() if r.userid == user), None)

    def active_interactive(self, user: str) -> int:
        return sum(
            1
            for r in self._records.values()
            if r.userid == user and r.type != "headless" and r.status in ACTIVE
        )

    def listing(self, user: str, kind: str | None, status: str | None, view: str | None) -> str:
        """``GET /session`` body (pretty JSON list) for these filters."""
        everyone = view == "all"
        records: Iterable[StoredSession] = self._ordered()
        if view == "interactive":
            records = [*(r for r in records if r.type != "headless"), *self._app_list()]
        elif kind is not None and kind.lower() == "desktop-app":
            records = self._app_list()
        kind_l = kind.lower() if kind is not None else None
        status_l = status.lower() if status is not None else None
        items = [
            (r.public_item() if everyone else r.item())
            for r in records
            if (everyone or r.userid == user)
            and (kind_l is None or r.type == kind_l)
            and (status_l is None or r.status.lower() == status_l)
        ]
        return join_items(items)

    def _app_list(self) -> list[StoredSession]:
        return sorted(self._apps.values(), key=lambda r: r.job_name)

    def app_listing(self, user: str, status: str | None, view: str | None) -> str:
        return self.listing(user, "desktop-app", status, view)

    def find_app(self, user: str, session_id: str, appid: str) -> StoredSession:
        app = self._apps.get((session_id, appid))
        if app is None or app.userid != user:
            raise not_found(
                f"desktop app with session {session_id} and app ID {appid} was not found"
            )
        return app

    def events(self, user: str, session_id: str) -> str:
        """``?view=events`` body: the kubectl table + newline, or ``<none>``."""
        record = self.find(user, session_id)
        if record is None:
            raise not_found(f"session {session_id} not found.")
        if not record.events:
            return "<none>\n"
        return kubectl_table(_EVENT_HEADER, (e.row() for e in record.events)).strip() + "\n"

    async def logs(self, user: str, session_id: str) -> bytes:
        """``?view=logs`` body: the job's output (desktop: with its apps'); empty if unknown.

        The HTTP route streams :meth:`log_parts` instead, so a big log is never held whole.
        """
        chunks = []
        for part in self.log_parts(user, session_id):
            chunks.append(
                await asyncio.to_thread(_read_bytes, part) if isinstance(part, Path) else part
            )
        return b"".join(chunks)

    def log_parts(self, user: str, session_id: str) -> list[Path | bytes]:
        """What ``?view=logs`` returns, in order: log files (the current file of each, as
        ``kubectl logs`` reads after a rotation) or fixed texts; none if unknown."""
        record = self.find(user, session_id)
        if record is None:
            return []
        parts = [record]
        if record.type == "desktop":
            parts += [a for a in self._app_list() if a.id == record.id]
        return [Path(p.log_file) if p.log_file is not None else p.log_text.encode() for p in parts]

    def stats(self) -> str:
        """``?view=stats`` body: the platform's capacity (``cores``/``ram``, by default this
        host's) and the sum of active sessions' requests."""
        active = [r for r in (*self._records.values(), *self._apps.values()) if r.status in ACTIVE]
        milli = sum(r.req_millicores for r in active)
        ram_gib = sum(r.req_ram_gib for r in active)
        ctx = self.settings.ctx
        max_cores = float(ctx.get("cores", {}).get("defaultLimit", 8))
        max_ram = f"{ctx.get('memoryGB', {}).get('defaultLimit', 32)}Gi"
        body = {
            "cores": {
                "requestedCPUCores": milli / 1000,
                "cpuCoresAvailable": float(self.settings.cores),
                "maxCPUCores": {"cpuCores": max_cores, "withRam": max_ram},
            },
            "ram": {
                "requestedRAM": decimal_g(ram_gib * GIB_IN_GB),
                "ramAvailable": decimal_g(self.settings.ram * GIB_IN_GB),
                "maxRAM": {"ram": max_ram, "withCPUCores": max_cores},
            },
        }
        return gson_pretty(body)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every session and app as dicts (tests, debugging)."""
        return [r.as_dict() for r in (*self._ordered(), *self._app_list())]

    def job_of(self, session_id: str) -> Job | None:
        record = self._records.get(session_id)
        return record.job if record is not None else None

        # ================================================================= creating

    def _new_id(self) -> str:
        while True:
            candidate = _random_id(8)
            if candidate not in self._records:
                return candidate

    def _resources(
        self, kind: str, cores: float | None, ram: float | None
    ) -> tuple[int, float, bool]:
        """(CPU request in millicores, memory request in GiB, fixed?) as the templates set them."""
        if kind == "desktop":  # hard-coded: 250m/1Gi request, 4Gi limit -> flexible
            return 250, 1.0, False
        if kind == "firefly":  # hard-coded: 0.1 CPU, 4Gi request = limit -> fixed
            return 100, 4.0, True
        ctx = self.settings.ctx
        req_cores = cores if cores is not None else ctx.get("cores", {}).get("defaultRequest", 1)
        req_ram = ram if ram is not None else ctx.get("memoryGB", {}).get("defaultRequest", 4)
        return round(float(req_cores) * 1000), float(req_ram), ram is not None

    def _new_record(
        self,
        user: User,
        kind: str,
        image: str,
        name: str,
        cores: float | None,
        ram: float | None,
        gpus: int,
        *,
        session_id: str | None = None,
        appid: str | None = None,
    ) -> StoredSession:
        """A new record of ``user``'s, its resources resolved, its lifetime starting now.

        A desktop-app passes its desktop's ``session_id`` and its own ``appid``.
        """
        if session_id is None:
            session_id = self._new_id()
        milli, ram_gib, fixed = self._resources(kind, cores, ram)
        url = ""
        if kind in _URL_PATHS:
            url = self.base_url + _URL_PATHS[kind].format(id=session_id, user=user.name)
        return StoredSession(
            id=session_id,
            appid=appid,
            userid=user.name,
            uid=user.uid,
            gid=user.gid,
            groups=user.groups,
            image=image,
            type=kind,
            name=name,
            connect_url=url,
            fixed=fixed,
            req_millicores=milli,
            req_ram_gib=ram_gib,
            gpus=gpus,
            deadline=self.settings.expiry_for(kind),
            created=time.time(),
        )

    def create(self, user: User, spec: CreateSpec) -> StoredSession:
        """Register a validated session and start its lifecycle; returns at once."""
        record = self._new_record(
            user, spec.kind, spec.image, spec.name, spec.cores, spec.ram, spec.gpus
        )
        self._add(record)
        if spec.kind == "headless":
            limit = (
                record.req_ram_gib
                if record.fixed
                else float(self.settings.ctx.get("memoryGB", {}).get("defaultLimit", 32))
            )
            record.ram_limit_gib = limit
            record.log_file = str(self.workdir / "logs" / f"{record.id}.log")
            record.job = self._make_job(record, spec, user)
            self._queue.append(record)
            self._kick()
        else:
            record.add_event("Normal", "Scheduled", self._scheduled_message(record), timed=False)
            self._schedule(record, "start", self._start_delay(), self._start_interactive, record)
        record.save()
        return record

    def preload(
        self,
        user: User,
        count: int,
        *,
        kind: str = "headless",
        status: str = COMPLETED,
        image: str = "images.canfar.net/skaha/terminal:1.1.2",
        name: str = "preload",
    ) -> list[str]:
        """Add ``count`` sessions directly in ``status`` (no process): benchmarks, demos.

        They follow the normal rules from then on (finished ones expire after the TTL,
        running ones at their deadline). The interactive limit and the capacity do not apply.
        """
        if kind not in SESSION_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if status not in (PENDING, RUNNING, COMPLETED, FAILED):
            raise ValueError(f"cannot preload sessions in status {status!r}")
        ids = []
        now = int(time.time())
        for n in range(count):
            record = self._new_record(user, kind, image, f"{name}-{n + 1}", None, None, 0)
            if status != PENDING:
                record.start = now
            record.log_text = f"preloaded {kind} session {record.id}\n"
            self._add(record)
            record.set_status(status)
            if status in FINISHED:
                self._schedule(record, "ttl", self.settings.ttl_for(kind), self._remove, record)
            elif status == RUNNING:
                self._schedule(record, "deadline", record.deadline, self._expire, record)
            ids.append(record.id)
        return ids

    def _add(self, record: StoredSession) -> None:
        self._records[record.id] = record
        self._sorted = None
        record.changed = self._mark

    def _start_delay(self) -> float:
        override = self.faults.start_delay
        return self.settings.start_delay if override is None else override

    def _scheduled_message(self, record: StoredSession) -> str:
        pod = f"{record.job_name}-{''.join(secrets.choice(_POD_SUFFIX) for _ in range(5))}"
        return f"Successfully assigned skaha-workload/{pod} to {self.node}"

    def _pull_events(self, record: StoredSession) -> None:
        if record.image in self._pulled:
            record.add_event(
                "Normal", "Pulled", f'Container image "{record.image}" already present on machine'
            )
            return
        self._pulled.add(record.image)
        record.add_event("Normal", "Pulling", f'Pulling image "{record.image}"')
        record.add_event(
            "Normal",
            "Pulled",
            f'Successfully pulled image "{record.image}" in 0s (0s including waiting)',
        )

    def _pull_failure_events(self, record: StoredSession) -> None:
        image = record.image
        record.add_event("Normal", "Pulling", f'Pulling image "{image}"')
        record.add_event(
            "Warning",
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
            f'failed to pull and unpack image "{image}": failed to resolve '
            f'reference "{image}": {image}: not found',
        )
        record.add_event("Warning", "Failed", "Error: ErrImagePull")
        record.add_event("Normal", "BackOff", f'Back-off pulling image "{image}"')
        record.add_event("Warning", "Failed", "Error: ImagePullBackOff")

    def _make_job(self, record: StoredSession, spec: CreateSpec, user: User) -> Job:
        home = self.storage.job_home(user.name)
        argv = list(spec.argv) if spec.argv is not None else None  # as the server's YAML gives it
        env = jobs_mod.build_env(
            user_env=spec.env,
            home=home,
            username=user.name,
            session_id=record.id,
            hostname=record.name,
            threads=max(1, record.req_millicores // 1000),
            inherit=self.settings.inherit_env,
            prefix=self.settings.environment_for(record.image),
            shim=self.python_shim,
        )
        assert record.log_file is not None
        return Job(
            argv=argv, env=env, cwd=home, log_path=Path(record.log_file), storage=self.storage
        )

    # ================================================================= capacity
    def capacity(self) -> tuple[int, float]:
        """Free (millicores, GiB) for new jobs."""
        used_milli = sum(r.req_millicores for r in self._holding)
        used_ram = sum(r.req_ram_gib for r in self._holding)
        return round(self.settings.cores * 1000) - used_milli, self.settings.ram - used_ram

    def _kick(self) -> None:
        """Try to start waiting jobs soon (once per loop iteration, however many asked)."""
        if self._kick_handle is None and not self._closing:
            self._kick_handle = self.loop.call_soon(self._schedule_pass)

    def _schedule_pass(self) -> None:
        """Start every waiting job that fits, oldest first; the others get FailedScheduling."""
        self._kick_handle = None
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        if self._closing:
            return
        free_milli, free_ram = self.capacity()
        waiting = []
        for record in self._queue:
            if record.status != PENDING:
                continue
            short = []
            if self.faults.unschedulable:
                message = _CORDONED
            else:
                if record.req_millicores > free_milli:
                    short.append("1 Insufficient cpu")
                if record.req_ram_gib > free_ram + 1e-9:
                    short.append("1 Insufficient memory")
                message = f"0/1 nodes are available: {', '.join(short)}." if short else ""
            if message:
                if not record.events or record.events[-1].message != message:
                    record.add_event("Warning", "FailedScheduling", message, timed=False)
                waiting.append(record)
                continue
            free_milli -= record.req_millicores
            free_ram -= record.req_ram_gib
            self._holding.add(record)
            record.add_event("Normal", "Scheduled", self._scheduled_message(record), timed=False)
            self._spawn_task(self._run_guarded(record))
        self._queue = waiting
        if waiting:
            self._retry_handle = self.loop.call_later(_RETRY, self._schedule_pass)

    def _release(self, record: StoredSession) -> None:
        """The job's processes are gone: its request is free for others."""
        if record in self._holding:
            self._holding.discard(record)
            self._kick()
        job: Job | None = record.job
        if job is not None and job.pgid is not None and self.supervisor is not None:
            self.supervisor.forget(job.pgid)

    def _watch_memory(self) -> None:
        """Kill (OOMKilled, exit 137) a running job whose group uses more than its limit."""
        self._memory_handle = None
        running = {
            r.job.pgid: r
            for r in self._holding
            if r.job is not None and r.job.alive and r.job.stop_reason is None
        }
        if not running or self._closing:
            return
        groups = proc.scan(set(running))
        for pgid, record in running.items():
            rss = sum(p.rss for p in groups.get(pgid, []))
            limit = record.ram_limit_gib
            if limit is not None and rss > limit * 2**30:
                log.info(
                    "session %s uses %.2f GiB, over its %g GiB limit: OOMKilled",
                    record.id,
                    rss / 2**30,
                    limit,
                )
                record.job.stop_reason = "oom"
                record.job.kill()
        self._memory_handle = self.loop.call_later(
            self.settings.memory_interval, self._watch_memory
        )

    def _start_memory_watch(self) -> None:
        if self._memory_handle is None and not self._closing:
            self._memory_handle = self.loop.call_later(
                self.settings.memory_interval, self._watch_memory
            )

    # =============================================================== lifecycles
    def _start_interactive(self, record: StoredSession) -> None:
        if record.status != PENDING:
            return
        self._pull_events(record)
        container = record.job_name
        record.add_event("Normal", "Created", f"Created container {container}")
        record.add_event("Normal", "Started", f"Started container {container}")
        record.start = int(time.time())
        record.log_text = (
            f"canfar-widgets local: emulated {record.type} session {record.id} "
            f"(image {record.image}); no container runs on this machine.\n"
            + (
                f"canfar-widgets local: serving {record.connect_url}\n"
                if record.connect_url
                else ""
            )
        )
        record.set_status(RUNNING)
        self._schedule(record, "deadline", record.deadline, self._expire, record)

    def _start_failed(self, record: StoredSession, message: str) -> None:
        """The job could not be started (no such command, disk full...): Failed, and why."""
        job: Job = record.job
        with contextlib.suppress(OSError):
            job.append_log(message)
        record.add_event("Warning", "Failed", f"Error: {message}")
        record.start = int(time.time())
        self._release(record)
        self._finish(record, FAILED)

    async def _run_guarded(self, record: StoredSession) -> None:
        """:meth:`_run_headless`, and if it breaks, the job is Failed with why (never left
        Pending or Running forever)."""
        try:
            await self._run_headless(record)
        except Exception as exc:
            log.exception("session %s: the local runtime failed", record.id)
            job: Job = record.job
            if job is not None and job.alive:
                job.kill()
            if record.status in ACTIVE:
                self._start_failed(record, f"local runtime error: {type(exc).__name__}: {exc}")
            else:
                self._release(record)

    async def _run_headless(self, record: StoredSession) -> None:
        job: Job = record.job
        if self.settings.headless_start_delay:
            await asyncio.sleep(self.settings.headless_start_delay)
        if record.status != PENDING or self._closing:
            self._release(record)
            return
        if self.faults.pull_fails(record.image):
            # The pod holds its place on the node and retries the pull until its deadline.
            self._pull_failure_events(record)
            record.start = int(time.time())
            record.touch()
            self._schedule(record, "deadline", record.deadline, self._expire, record)
            return
        try:
            fd = job.open_log()
            os.close(fd)
            job.local_cwd().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._start_failed(record, f"failed to prepare the container: {exc}")
            return
        self._pull_events(record)
        record.add_event("Normal", "Created", f"Created container {record.job_name}")
        if job.argv is None:
            # No cmd: the container would run the image's entrypoint, which is not emulated.
            message = (
                f"canfar-widgets local: no cmd given; the entrypoint of "
                f"{record.image} is not emulated, nothing was run."
            )
            try:
                job.append_log(message)
            except OSError as exc:
                self._start_failed(record, f"failed to write the log: {exc}")
                return
            record.add_event("Normal", "Started", f"Started container {record.job_name}")
            record.start = int(time.time())
            self._release(record)
            self._finish(record, COMPLETED)
            return
        try:
            job.spawning = True
            await job.spawn()
        except OSError as exc:
            if exc.filename is not None and exc.filename != job.argv[0]:
                message = f"failed to start the container: {exc}"  # the log, the cwd...
            else:
                message = jobs_mod.runtime_error(exc, job.argv[0])
            self._start_failed(record, message)
            return
        finally:
            job.spawning = False
        assert job.pgid is not None
        if self.supervisor is not None:
            self.supervisor.watch(job.pgid, job.start_ticks)
        record.pgid, record.pgid_start, record.boot = job.pgid, job.start_ticks, self.boot
        record.add_event("Normal", "Started", f"Started container {record.job_name}")
        record.start = int(time.time())
        if job.stop_reason is None and record.status == PENDING:
            record.set_status(RUNNING)
            self._schedule(record, "deadline", record.deadline, self._expire, record)
            self._start_memory_watch()
        else:  # deleted (or shutting down) while it was being started
            await job.terminate(self.settings.kill_grace)
        code = await job.wait()
        log.debug("session %s exited with %s", record.id, code)
        self._release(record)
        reason = job.stop_reason
        if reason == "delete":
            self._drop_files(record)
        elif reason == "shutdown":
            return
        elif reason == "deadline":
            self._finish(record, FAILED, reason="DeadlineExceeded")
        elif reason == "oom":
            limit = f"{record.ram_limit_gib:g}Gi"
            record.add_event(
                "Warning",
                "OOMKilled",
                f"Container {record.job_name} was OOMKilled: its memory use "
                f"exceeded the limit of {limit} (exit code 137)",
            )
            self._finish(record, FAILED)
        else:
            if code != 0:
                record.add_event(
                    "Normal",
                    "Terminated",
                    f"Container {record.job_name} terminated with exit code {code} (Error)",
                )
            self._finish(record, COMPLETED if code == 0 else FAILED)

    def _finish(self, record: StoredSession, status: str, *, reason: str | None = None) -> None:
        """A Job ended: its Job-level event, the final status, and the TTL countdown."""
        self._cancel(record, "deadline")
        if reason == "DeadlineExceeded":
            record.add_event(
                "Warning", "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        elif status == COMPLETED:
            record.add_event("Normal", "Completed", "Job completed")
        else:
            record.add_event(
                "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        record.set_status(status)
        if not self._closing:
            self._schedule(record, "ttl", self.settings.ttl_for(record.type), self._remove, record)

    def _expire(self, record: StoredSession) -> None:
        """``activeDeadlineSeconds`` elapsed: Kubernetes kills the pod, the Job fails."""
        if record.status not in ACTIVE:
            return
        record.add_event("Normal", "Killing", f"Stopping container {record.job_name}")
        for app in self._apps_of(record):
            self._expire(app)
        job: Job | None = record.job
        if job is not None and job.alive:
            job.stop_reason = "deadline"
            self._spawn_task(job.terminate(self.settings.kill_grace))
            return  # _run_headless finishes the record when the process is gone
        self._release(record)
        self._finish(record, FAILED, reason="DeadlineExceeded")

    # ================================================================== commands
    def renew(self, user: User, session_id: str) -> None:
        """Extend the caller's active session (and its apps) to now + ``session_expiry``.

        As on the server, the new deadline only applies when it is later than the current
        one, and it is ``skaha.sessionexpiry`` for every kind: a young headless job (14-day
        deadline) is left unchanged.
        """
        record = self.find(user.name, session_id)
        targets = [] if record is None else [record, *self._apps_of(record)]
        targets = [t for t in targets if t.status in ACTIVE]
        if not targets:
            raise bad_request(
                f"No active job for user {user.posix_principal()} with session {session_id}"
            )
        now = int(time.time())
        expiry = self.settings.session_expiry
        for target in targets:
            if target.start is None:  # not started: its deadline has not begun to run
                continue
            used = now - target.start
            if expiry > target.deadline - used:
                target.deadline = used + expiry
                target.touch()
                target.save()
                self._schedule(target, "deadline", target.deadline - used, self._expire, target)

    def delete(self, user: str, session_id: str) -> None:
        """Delete the caller's session (and its apps); unknown ids are silently ignored.

        As on the server (background propagation, no finalizer), the session is gone from
        the API at once; its processes are stopped in the background.
        """
        record = self.find(user, session_id)
        if record is None or record.status == TERMINATING:
            return  # the server swallows every delete error
        for app in self._apps_of(record):
            self._terminate(app)
        self._terminate(record)

    def _terminate(self, record: StoredSession) -> None:
        for name in list(record.timers):
            self._cancel(record, name)
        record.set_status(TERMINATING)  # internal only: the record leaves the API now
        self._forget(record)
        job: Job | None = record.job
        if job is not None and (job.alive or job.spawning):
            # _run_headless frees the capacity and the log once the process group is gone
            job.stop_reason = "delete"
            if job.alive:
                self._spawn_task(job.terminate(self.settings.kill_grace))
            return
        self._release(record)
        self._drop_files(record)

    def _forget(self, record: StoredSession) -> None:
        """Take the record out of the API and the state file."""
        if record.appid is not None:
            self._apps.pop((record.id, record.appid), None)
        elif self._records.get(record.id) is record:
            del self._records[record.id]
            self._sorted = None
        if record in self._queue:
            self._queue.remove(record)
        record.changed = None
        self._dirty[record.key] = None
        self._schedule_flush()

    def _drop_files(self, record: StoredSession) -> None:
        if record.log_file is not None:
            delete_log(Path(record.log_file))

    def _remove(self, record: StoredSession) -> None:
        """The Job is gone (garbage-collected after its TTL): forget it and its logs."""
        for name in list(record.timers):
            self._cancel(record, name)
        self._forget(record)
        if record.job is None or not record.job.alive:
            self._drop_files(record)

    # ============================================================== desktop apps
    def _apps_of(self, record: StoredSession) -> list[StoredSession]:
        if record.appid is not None or record.type != "desktop":
            return []
        return [a for (sid, _), a in self._apps.items() if sid == record.id]

    def create_app(
        self, user: User, session_id: str, image: str, cores: float | None, ram: float | None
    ) -> StoredSession:
        """Attach a desktop-app to the caller's running desktop."""
        desktop = self.find(user.name, session_id)
        if desktop is None or desktop.type != "desktop" or desktop.status != RUNNING:
            raise not_found(f"session {session_id} not found")
        while True:
            appid = _random_id(3)
            if (session_id, appid) not in self._apps:
                break
        tail = image.rsplit("/", 1)[-1]
        name = "".join("-" if c in ":._" else c for c in tail).lower()
        app = self._new_record(
            user, "desktop-app", image, name, cores, ram, 0, session_id=session_id, appid=appid
        )
        self._apps[(session_id, appid)] = app
        app.changed = self._mark
        app.add_event("Normal", "Scheduled", self._scheduled_message(app), timed=False)
        self._schedule(app, "start", self._start_delay(), self._start_interactive, app)
        return app

    def delete_app(self, user: str, session_id: str, appid: str) -> None:
        app = self._apps.get((session_id, appid))
        if app is not None and app.userid == user and app.status != TERMINATING:
            self._terminate(app)

    # ============================================================== persistence
    def _mark(self, record: StoredSession) -> None:
        self._dirty[record.key] = record
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_later(_FLUSH, self.flush)

    def flush(self) -> None:
        """Write the changed records now (one transaction)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        changed = {k: r.to_state() for k, r in dirty.items() if r is not None}
        self.state.write(changed, [k for k, r in dirty.items() if r is None])

    def restore(self) -> int:
        """Take back the sessions a previous platform left in the state file.

        Finished sessions keep their status and TTL; interactive ones resume (they run
        nothing). A headless job that was Pending or Running when the previous platform died
        is Failed, with a ``NodeLost`` event, and whatever is left of its process group is
        killed, unless its pid now belongs to another process. Returns how many were read.
        """
        rows = self.state.load()
        now = time.time()
        leftovers = []
        for data in sorted(rows, key=lambda d: d.get("created", 0)):
            try:
                record = StoredSession.from_state(data)
            except (TypeError, KeyError):
                continue
            if record.status == TERMINATING:
                self._dirty[record.key] = None
                continue
            if record.appid is not None:
                self._apps[(record.id, record.appid)] = record
            else:
                self._records[record.id] = record
            record.changed = self._mark
            self._sorted = None
            if record.type in _URL_PATHS and record.appid is None:  # this run's host and port
                record.connect_url = self.base_url + _URL_PATHS[record.type].format(
                    id=record.id, user=record.userid
                )
            if record.status in FINISHED:
                left = self.settings.ttl_for(record.type) - (now - (record.finished_at or now))
                self._schedule(record, "ttl", max(0.0, left), self._remove, record)
            elif record.type == "headless":
                leftovers.append(record)
                record.add_event(
                    "Warning",
                    "NodeLost",
                    f"Node {self.node} which was running pod {record.job_name} is unresponsive",
                )
                self._finish(record, FAILED)
            elif record.status == PENDING:
                self._schedule(
                    record, "start", self._start_delay(), self._start_interactive, record
                )
            elif record.start is not None:
                left = record.start + record.deadline - now
                self._schedule(record, "deadline", max(0.0, left), self._expire, record)
        for record in leftovers:
            self._reap(record)
        self.flush()
        return len(rows)

    def _reap(self, record: StoredSession) -> None:
        """Kill what is left of a dead platform's job, if it is still that job."""
        pgid = record.pgid
        if pgid is None or record.boot != self.boot:
            return  # never started, or another boot: every process of it is gone
        leader = proc.start_ticks(pgid)
        if leader is not None and leader != record.pgid_start:
            return  # the pid was reused: that group is not ours
        members = proc.scan({pgid}).get(pgid, [])
        if members:
            log.warning(
                "killing %d leftover process(es) of session %s (process group %d)",
                len(members),
                record.id,
                pgid,
            )
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)

    # ================================================================ machinery
    def _schedule(
        self, record: StoredSession, name: str, delay: float, fn: Callable[..., Any], *args: Any
    ) -> None:
        if self._closing:
            return
        self._cancel(record, name)
        record.timers[name] = self.loop.call_later(max(0.0, delay), fn, *args)

    @staticmethod
    def _cancel(record: StoredSession, name: str) -> None:
        handle = record.timers.pop(name, None)
        if isinstance(handle, asyncio.TimerHandle):
            handle.cancel()

    def _spawn_task(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("local platform task failed", exc_info=task.exception())

    def _sample(self) -> None:
        """Refresh ``ramInUse``/``cpuCoresInUse`` of running jobs (like metrics-server)."""
        running = {
            r.job.pgid: r
            for r in self._records.values()
            if r.status == RUNNING and r.job is not None and r.job.pgid is not None
        }
        groups = proc.scan(set(running)) if running else {}
        for pgid, record in running.items():
            usage = record.job.usage(groups.get(pgid, []))
            if usage is None:
                continue
            if (usage.ram, usage.cpu) != (record.ram_in_use, record.cpu_in_use):
                record.ram_in_use, record.cpu_in_use = usage.ram, usage.cpu
                record.touch()
        if not self._closing:
            self._sampler = self.loop.call_later(self.settings.metrics_interval, self._sample)

    def live_jobs(self) -> list[Job]:
        records = {*self._records.values(), *self._apps.values(), *self._holding}
        return [r.job for r in records if r.job is not None and r.job.alive]

    async def shutdown(self) -> None:
        """Stop everything: timers, pending starts, and every process group (TERM, then KILL).

        Headless jobs still active are recorded as Failed (``NodeShutdown``), so a platform
        restarted on the same workdir tells the truth about them.
        """
        self._closing = True
        for handle in (self._sampler, self._kick_handle, self._retry_handle, self._memory_handle):
            if handle is not None:
                handle.cancel()
        for record in (*self._records.values(), *self._apps.values()):
            for name in list(record.timers):
                self._cancel(record, name)
        live = self.live_jobs()
        for job in live:
            job.stop_reason = "shutdown"
        await asyncio.gather(
            *(job.terminate(self.settings.kill_grace) for job in live), return_exceptions=True
        )
        # headless tasks still sleeping before their start: nothing to kill, just stop them
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.settings.kill_grace + 5)
        for job in self.live_jobs():  # belt and braces: nothing may outlive the platform
            job.signal(signal.SIGKILL)
            if job.process is not None:
                with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
                    await asyncio.wait_for(job.process.wait(), 5)
        for record in list(self._records.values()):
            if record.type == "headless" and record.status in ACTIVE:
                record.add_event(
                    "Warning",
                    "NodeShutdown",
                    "Pod was terminated in response to imminent node shutdown.",
                )
                self._finish(record, FAILED)
        for record in self._holding:
            if record.job is not None and record.job.pgid is not None and self.supervisor:
                self.supervisor.forget(record.job.pgid)
        self._holding.clear()
        self.flush()
        self.state.close()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
