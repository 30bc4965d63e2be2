"""Session state: ids, the status machine, timers, listings, stats.

Everything here runs on the platform's event loop thread, so no lock is needed and none is
ever held across I/O. Status changes are driven by loop timers (start delay, expiry,
finished TTL) and by headless processes exiting.

Lifecycle (what a client polling the API sees):

* interactive: ``Pending`` -> (``start_delay``) ``Running`` -> past expiry ``Failed``;
* headless: ``Pending`` -> (``headless_start_delay``) ``Running`` while the process runs ->
  ``Completed`` (exit 0) or ``Failed`` (non-zero exit, signal, cannot exec, past expiry);
* delete: ``Terminating`` until the process group is gone (at least ``terminating_delay``),
  then the session disappears; finished sessions disappear after the finished TTL.

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
from canfar_widgets.local.jobs import Job
from canfar_widgets.local.records import (
    ACTIVE,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    TERMINATING,
    SessionRecord,
)
from canfar_widgets.local.settings import Settings
from canfar_widgets.local.validation import CreateSpec

__all__ = ["SessionStore"]

log = logging.getLogger("canfar_widgets.local")

_FIRST = string.ascii_lowercase
_REST = string.ascii_lowercase + string.digits
_POD_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' random-name alphabet
_EVENT_HEADER = ("TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME")
# connectURL path per kind (SessionURLBuilder shapes, served by this platform itself)
_URL_PATHS: dict[str, str] = {
    "desktop": "/session/desktop/{id}/?password={id}&path=session/desktop/{id}/",
    "notebook": "/session/notebook/{id}/lab/tree/home/{user}?token={id}",
    "carta": "/session/carta/{id}/",
    "contributed": "/session/contrib/{id}/",
    "firefly": "/session/firefly/{id}/firefly/",
}
# URL path segment -> kind, for the session pages
URL_KINDS = {"desktop": "desktop", "notebook": "notebook", "carta": "carta",
             "contrib": "contributed", "firefly": "firefly"}


def _random_id(length: int) -> str:
    return secrets.choice(_FIRST) + "".join(secrets.choice(_REST) for _ in range(length - 1))


class SessionStore:
    """All sessions of all users, and what happens to them over time."""

    def __init__(self, settings: Settings, workdir: Path, *, base_url: str,
                 faults: Faults | None = None) -> None:
        self.settings = settings
        self.faults = faults or Faults()
        self.workdir = workdir
        self.base_url = base_url
        self.node = socket.gethostname() or "localhost"
        self._records: dict[str, SessionRecord] = {}  # session id -> session
        self._apps: dict[tuple[str, str], SessionRecord] = {}  # (session id, app id) -> app
        self._sorted: list[SessionRecord] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pulled: set[str] = set()
        self._closing = False
        self._sampler: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()
        if settings.metrics_interval > 0:
            self._sampler = self.loop.call_later(settings.metrics_interval, self._sample)

    # ================================================================== queries
    def _ordered(self) -> list[SessionRecord]:
        # The server lists in Kubernetes Job order, i.e. by job name.
        if self._sorted is None:
            self._sorted = sorted(self._records.values(), key=lambda r: r.job_name)
        return self._sorted

    def find(self, user: str, session_id: str) -> SessionRecord | None:
        """The caller's session with that id, or None (another user's counts as unknown)."""
        record = self._records.get(session_id)
        return record if record is not None and record.userid == user else None

    def lookup(self, session_id: str) -> SessionRecord | None:
        """Any user's session by id (the session pages are not per-user API calls)."""
        return self._records.get(session_id)

    def first(self, user: str) -> SessionRecord | None:
        """The caller's first session: what ``GET /session/`` (blank id) answers on the server."""
        return next((r for r in self._ordered() if r.userid == user), None)

    def active_interactive(self, user: str) -> int:
        return sum(1 for r in self._records.values()
                   if r.userid == user and r.type != "headless" and r.status in ACTIVE)

    def listing(self, user: str, kind: str | None, status: str | None, view: str | None) -> str:
        """``GET /session`` body (pretty JSON list) for these filters."""
        everyone = view == "all"
        records: Iterable[SessionRecord] = self._ordered()
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

    def _app_list(self) -> list[SessionRecord]:
        return sorted(self._apps.values(), key=lambda r: r.job_name)

    def app_listing(self, user: str, status: str | None, view: str | None) -> str:
        return self.listing(user, "desktop-app", status, view)

    def find_app(self, user: str, session_id: str, appid: str) -> SessionRecord:
        app = self._apps.get((session_id, appid))
        if app is None or app.userid != user:
            raise not_found(f"desktop app with session {session_id} and app ID {appid} "
                            "was not found")
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
        """``?view=logs`` body: the job's output (desktop: with its apps'); empty if unknown."""
        record = self.find(user, session_id)
        if record is None:
            return b""
        parts = [record]
        if record.type == "desktop":
            parts += [a for a in self._app_list() if a.id == record.id]
        chunks = []
        for part in parts:
            if part.job is not None:
                chunks.append(await asyncio.to_thread(_read_bytes, part.job.log_path))
            else:
                chunks.append(part.log_text.encode())
        return b"".join(chunks)

    def stats(self) -> str:
        """``?view=stats`` body: host capacity and the sum of active sessions' requests."""
        active = [r for r in (*self._records.values(), *self._apps.values()) if r.status in ACTIVE]
        milli = sum(r.req_millicores for r in active)
        ram_gib = sum(r.req_ram_gib for r in active)
        ctx = self.settings.ctx
        max_cores = float(ctx.get("cores", {}).get("defaultLimit", 8))
        max_ram = f"{ctx.get('memoryGB', {}).get('defaultLimit', 32)}Gi"
        body = {
            "cores": {
                "requestedCPUCores": milli / 1000,
                "cpuCoresAvailable": float(os.cpu_count() or 1),
                "maxCPUCores": {"cpuCores": max_cores, "withRam": max_ram},
            },
            "ram": {
                "requestedRAM": decimal_g(ram_gib * GIB_IN_GB),
                "ramAvailable": decimal_g(_host_memory() / 1e9),
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

    def _resources(self, kind: str, cores: int | None, ram: int | None) -> tuple[int, float, bool]:
        """(CPU request in millicores, memory request in GiB, fixed?) as the templates set them."""
        if kind == "desktop":  # hard-coded: 250m/1Gi request, 4Gi limit -> flexible
            return 250, 1.0, False
        if kind == "firefly":  # hard-coded: 0.1 CPU, 4Gi request = limit -> fixed
            return 100, 4.0, True
        ctx = self.settings.ctx
        req_cores = cores if cores is not None else ctx.get("cores", {}).get("defaultRequest", 1)
        req_ram = ram if ram is not None else ctx.get("memoryGB", {}).get("defaultRequest", 4)
        return int(req_cores) * 1000, float(req_ram), ram is not None

    def _new_record(self, user: User, kind: str, image: str, name: str, cores: int | None,
                    ram: int | None, gpus: int) -> SessionRecord:
        session_id = self._new_id()
        milli, ram_gib, fixed = self._resources(kind, cores, ram)
        url = ""
        if kind in _URL_PATHS:
            url = self.base_url + _URL_PATHS[kind].format(id=session_id, user=user.name)
        return SessionRecord(
            id=session_id, userid=user.name, uid=user.uid, gid=user.gid, groups=user.groups,
            image=image, type=kind, name=name, connect_url=url, fixed=fixed,
            req_millicores=milli, req_ram_gib=ram_gib, gpus=gpus,
            deadline=self.settings.expiry_for(kind), created=time.time(),
        )

    def create(self, user: User, spec: CreateSpec) -> SessionRecord:
        """Register a validated session and start its lifecycle; returns at once."""
        record = self._new_record(user, spec.kind, spec.image, spec.name, spec.cores, spec.ram,
                                  spec.gpus)
        self._add(record)
        record.add_event("Normal", "Scheduled", self._scheduled_message(record), timed=False)
        if spec.kind == "headless":
            record.job = self._make_job(record, spec, user)
            self._spawn_task(self._run_headless(record))
        else:
            self._schedule(record, "start", self._start_delay(), self._start_interactive, record)
        return record

    def preload(self, user: User, count: int, *, kind: str = "headless",
                status: str = COMPLETED, image: str = "images.canfar.net/skaha/terminal:1.1.2",
                name: str = "preload") -> list[str]:
        """Add ``count`` sessions directly in ``status`` (no process): benchmarks, demos.

        They follow the normal rules from then on (finished ones expire after the TTL,
        running ones at their deadline). The interactive limit does not apply.
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

    def _add(self, record: SessionRecord) -> None:
        self._records[record.id] = record
        self._sorted = None

    def _start_delay(self) -> float:
        override = self.faults.start_delay
        return self.settings.start_delay if override is None else override

    def _scheduled_message(self, record: SessionRecord) -> str:
        pod = f"{record.job_name}-{''.join(secrets.choice(_POD_SUFFIX) for _ in range(5))}"
        return f"Successfully assigned skaha-workload/{pod} to {self.node}"

    def _pull_events(self, record: SessionRecord) -> None:
        if record.image in self._pulled:
            record.add_event("Normal", "Pulled",
                             f'Container image "{record.image}" already present on machine')
            return
        self._pulled.add(record.image)
        record.add_event("Normal", "Pulling", f'Pulling image "{record.image}"')
        record.add_event("Normal", "Pulled", f'Successfully pulled image "{record.image}" in 0s '
                                             "(0s including waiting)")

    def _make_job(self, record: SessionRecord, spec: CreateSpec, user: User) -> Job:
        cwd = self.workdir / "sessions" / record.id
        argv = jobs_mod.argv_for(spec.cmd, spec.args) if spec.cmd is not None else None
        env = jobs_mod.build_env(
            user_env=spec.env, home=cwd, username=user.name, session_id=record.id,
            hostname=record.name, threads=max(1, record.req_millicores // 1000),
            inherit=self.settings.inherit_env,
        )
        return Job(argv=argv, env=env, cwd=cwd, log_path=self.workdir / "logs" / f"{record.id}.log")

    # =============================================================== lifecycles
    def _start_interactive(self, record: SessionRecord) -> None:
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
            + (f"canfar-widgets local: serving {record.connect_url}\n" if record.connect_url else "")
        )
        record.set_status(RUNNING)
        self._schedule(record, "deadline", record.deadline, self._expire, record)

    async def _run_headless(self, record: SessionRecord) -> None:
        job: Job = record.job
        await asyncio.sleep(self.settings.headless_start_delay)
        if record.status != PENDING or self._closing:
            return
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        job.log_path.touch()
        self._pull_events(record)
        record.add_event("Normal", "Created", f"Created container {record.job_name}")
        if job.argv is None:
            # No cmd: the container would run the image's entrypoint, which is not emulated.
            job.cwd.mkdir(parents=True, exist_ok=True)
            job.append_log(f"canfar-widgets local: no cmd given; the entrypoint of "
                           f"{record.image} is not emulated, nothing was run.")
            record.add_event("Normal", "Started", f"Started container {record.job_name}")
            record.start = int(time.time())
            self._finish(record, COMPLETED)
            return
        try:
            job.spawning = True
            await job.spawn()
        except OSError as exc:
            message = jobs_mod.runtime_error(exc, job.argv[0])
            job.append_log(message)
            record.add_event("Warning", "Failed", f"Error: {message}")
            record.start = int(time.time())
            self._finish(record, FAILED)
            return
        finally:
            job.spawning = False
        record.add_event("Normal", "Started", f"Started container {record.job_name}")
        record.start = int(time.time())
        if job.stop_reason is None and record.status == PENDING:
            record.set_status(RUNNING)
            self._schedule(record, "deadline", record.deadline, self._expire, record)
        else:  # deleted (or shutting down) while it was being started
            await job.terminate(self.settings.kill_grace)
        code = await job.wait()
        log.debug("session %s exited with %s", record.id, code)
        if job.stop_reason == "delete":
            self._after_terminated(record)
        elif job.stop_reason == "shutdown":
            return
        elif job.stop_reason == "deadline":
            self._finish(record, FAILED, reason="DeadlineExceeded")
        else:
            self._finish(record, COMPLETED if code == 0 else FAILED)

    def _finish(self, record: SessionRecord, status: str, *, reason: str | None = None) -> None:
        """A Job ended: its Job-level event, the final status, and the TTL countdown."""
        self._cancel(record, "deadline")
        if reason == "DeadlineExceeded":
            record.add_event("Warning", "DeadlineExceeded",
                             "Job was active longer than specified deadline")
        elif status == COMPLETED:
            record.add_event("Normal", "Completed", "Job completed")
        else:
            record.add_event("Warning", "BackoffLimitExceeded",
                             "Job has reached the specified backoff limit")
        record.set_status(status)
        if not self._closing:
            self._schedule(record, "ttl", self.settings.ttl_for(record.type), self._remove, record)

    def _expire(self, record: SessionRecord) -> None:
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
            raise bad_request(f"No active job for user {user.posix_principal()} "
                              f"with session {session_id}")
        now = int(time.time())
        expiry = self.settings.session_expiry
        for target in targets:
            if target.start is None:  # not started: its deadline has not begun to run
                continue
            used = now - target.start
            if expiry > target.deadline - used:
                target.deadline = used + expiry
                target.touch()
                self._schedule(target, "deadline", target.deadline - used, self._expire, target)

    def delete(self, user: str, session_id: str) -> None:
        """Delete the caller's session (and its apps); unknown ids are silently ignored."""
        record = self.find(user, session_id)
        if record is None or record.status == TERMINATING:
            return  # the server swallows every delete error
        for app in self._apps_of(record):
            self._terminate(app)
        self._terminate(record)

    def _terminate(self, record: SessionRecord) -> None:
        was_running = record.status == RUNNING
        for name in ("start", "deadline", "ttl"):
            self._cancel(record, name)
        record.set_status(TERMINATING)
        record.timers["terminating_since"] = time.monotonic()
        if was_running:
            record.add_event("Normal", "Killing", f"Stopping container {record.job_name}")
        job: Job | None = record.job
        if job is not None and (job.alive or job.spawning):
            # _run_headless removes the record once the process group is gone
            job.stop_reason = "delete"
            if job.alive:
                self._spawn_task(job.terminate(self.settings.kill_grace))
            return
        self._schedule(record, "remove", self.settings.terminating_delay, self._remove, record)

    def _after_terminated(self, record: SessionRecord) -> None:
        since = record.timers.get("terminating_since", time.monotonic())
        left = max(0.0, self.settings.terminating_delay - (time.monotonic() - since))
        self._schedule(record, "remove", left, self._remove, record)

    def _remove(self, record: SessionRecord) -> None:
        """The Job is gone (deleted or garbage-collected): forget it and its logs."""
        for name in list(record.timers):
            self._cancel(record, name)
        if record.appid is not None:
            self._apps.pop((record.id, record.appid), None)
        elif self._records.get(record.id) is record:
            del self._records[record.id]
            self._sorted = None
        if record.job is not None and not record.job.alive:
            with contextlib.suppress(OSError):
                record.job.log_path.unlink()

    # ============================================================== desktop apps
    def _apps_of(self, record: SessionRecord) -> list[SessionRecord]:
        if record.appid is not None or record.type != "desktop":
            return []
        return [a for (sid, _), a in self._apps.items() if sid == record.id]

    def create_app(self, user: User, session_id: str, image: str, cores: int | None,
                   ram: int | None) -> SessionRecord:
        """Attach a desktop-app to the caller's running desktop."""
        desktop = self.find(user.name, session_id)
        if desktop is None or desktop.type != "desktop" or desktop.status != RUNNING:
            raise not_found(f"session {session_id} not found")
        while True:
            appid = _random_id(3)
            if (session_id, appid) not in self._apps:
                break
        milli, ram_gib, fixed = self._resources("desktop-app", cores, ram)
        tail = image.rsplit("/", 1)[-1]
        name = "".join("-" if c in ":._" else c for c in tail).lower()
        app = SessionRecord(
            id=session_id, appid=appid, userid=user.name, uid=user.uid, gid=user.gid,
            groups=user.groups, image=image, type="desktop-app", name=name, connect_url="",
            fixed=fixed, req_millicores=milli, req_ram_gib=ram_gib, gpus=0,
            deadline=self.settings.session_expiry, created=time.time(),
        )
        self._apps[(session_id, appid)] = app
        app.add_event("Normal", "Scheduled", self._scheduled_message(app), timed=False)
        self._schedule(app, "start", self._start_delay(), self._start_interactive, app)
        return app

    def delete_app(self, user: str, session_id: str, appid: str) -> None:
        app = self._apps.get((session_id, appid))
        if app is not None and app.userid == user and app.status != TERMINATING:
            self._terminate(app)

    # ================================================================ machinery
    def _schedule(self, record: SessionRecord, name: str, delay: float,
                  fn: Callable[..., Any], *args: Any) -> None:
        if self._closing:
            return
        self._cancel(record, name)
        record.timers[name] = self.loop.call_later(max(0.0, delay), fn, *args)

    @staticmethod
    def _cancel(record: SessionRecord, name: str) -> None:
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
        for record in self._records.values():
            job: Job | None = record.job
            if record.status != RUNNING or job is None:
                continue
            usage = job.sample()
            if usage is None:
                continue
            if (usage.ram, usage.cpu) != (record.ram_in_use, record.cpu_in_use):
                record.ram_in_use, record.cpu_in_use = usage.ram, usage.cpu
                record.touch()
        if not self._closing:
            self._sampler = self.loop.call_later(self.settings.metrics_interval, self._sample)

    def live_jobs(self) -> list[Job]:
        return [r.job for r in (*self._records.values(), *self._apps.values())
                if r.job is not None and r.job.alive]

    async def shutdown(self) -> None:
        """Stop everything: timers, pending starts, and every process group (TERM, then KILL)."""
        self._closing = True
        if self._sampler is not None:
            self._sampler.cancel()
        for record in (*self._records.values(), *self._apps.values()):
            for name in list(record.timers):
                self._cancel(record, name)
        live = self.live_jobs()
        for job in live:
            job.stop_reason = "shutdown"
        await asyncio.gather(*(job.terminate(self.settings.kill_grace) for job in live),
                             return_exceptions=True)
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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0

