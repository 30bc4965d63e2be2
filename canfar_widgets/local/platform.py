"""``LocalPlatform``: the skaha v1 API on loopback, in a background thread.

The platform owns one asyncio event loop (tornado runs on it) in a daemon thread. All session
state lives on that loop; the public methods below hop onto it and wait for the result.

**It runs commands.** A headless session's ``cmd``/``args`` are executed on this machine as
the current user. Keep it on loopback (the default) and keep the token to yourself.

Example:
    >>> with LocalPlatform(start_delay=0.2) as platform:  # doctest: +SKIP
    ...     session = platform.session()          # canfar_widgets.sessions.Session
    ...     ids = session.create(name="hi", image="images.canfar.net/skaha/terminal:1.1.2",
    ...                          cmd="echo", args="hello")
    ...     platform.url
    'http://127.0.0.1:40123/skaha/v1'
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import platformdirs
import tornado.httpserver

from canfar_widgets.local import discovery
from canfar_widgets.local.app import AppState, make_app
from canfar_widgets.local.faults import Faults
from canfar_widgets.local.identity import Users
from canfar_widgets.local.settings import Settings, default_username, host_cores, host_ram_gib
from canfar_widgets.local.storage import Storage
from canfar_widgets.local.store import SessionStore
from canfar_widgets.local.supervisor import Supervisor

__all__ = ["LocalPlatform", "is_loopback"]

log = logging.getLogger("canfar_widgets.local")
T = TypeVar("T")

# Room for a burst of connections (200 concurrent creates) before the kernel drops SYNs.
LISTEN_BACKLOG = 1024


def default_arc() -> Path:
    """The default storage root: ``<user state dir of canfar-widgets>/arc``, kept between runs
    like CANFAR's own storage."""
    return Path(platformdirs.user_state_dir("canfar-widgets")) / "arc"


def _default_ram(cores: float | None, context: Mapping[str, Any] | None) -> float:
    """This host's memory, but room for at least one default (flexible) job per core: a
    small laptop would otherwise never start a flexible job (4 GiB request each)."""
    per_job = float(((context or {}).get("memoryGB") or {}).get("defaultRequest", 4))
    return max(host_ram_gib(), (cores if cores is not None else host_cores()) * per_job)


def _raise_file_limit() -> None:
    """Use the hard limit on open files: each connection costs one, and a flood of idle
    ones must not use up the default 1,024 before the idle timeout closes them."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the platform on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of ``host``, all on one port; none leak on failure.

    (``tornado.netutil.bind_sockets`` leaves the socket open when ``bind`` fails.)
    """
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        seen = set()
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            if port == 0 and sockets:  # every family on the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.setblocking(False)
                sock.listen(LISTEN_BACKLOG)
            except OSError:
                sock.close()
                if sockets and family == socket.AF_INET6:
                    continue  # e.g. "localhost" on a host without IPv6: IPv4 is enough
                raise
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class LocalPlatform:
    """A local CANFAR platform that speaks skaha v1 and runs headless jobs as processes.

    Args:
        host: address to bind (loopback by default; anything else exposes a service that
            runs commands to the network).
        port: TCP port; 0 picks a free one.
        token: the bearer token clients must send; random (``secrets.token_urlsafe``) if None.
        username: the token's user; default: the current login name.
        users: extra ``{token: username}`` pairs (other users, to try isolation / ``view=all``).
        start_delay: interactive Pending -> Running delay (seconds).
        headless_start_delay: delay before a headless command starts.
        finished_ttl: seconds finished sessions stay listed (None: 3600 headless, 86400 others).
        session_expiry: interactive lifetime and what renew grants (345600 = 4 days).
        headless_expiry: headless lifetime (1209600 = 14 days); the job is killed after it.
        max_sessions: active interactive sessions per user (5).
        allowed_hosts: image registries accepted (prefix match).
        images: ``/v1/image`` entries (``{"id", "types", "digest"}``); others are private.
        context: the ``/v1/context`` object; default: the shipped one.
        workdir: the platform's state (sessions, logs); default: a temp dir removed by
            :meth:`stop`. A platform restarted on the same workdir lists the earlier sessions.
        arc: the storage root jobs see at ``/arc`` (``home/<user>``, ``projects/<name>``);
            default: :func:`default_arc`, kept between runs.
        mount_arc: mount ``arc`` at ``/arc`` for jobs with bubblewrap when possible (False:
            never; jobs then get ``HOME`` under ``arc`` directly).
        cores: CPU capacity headless jobs are scheduled on (default: this host's).
        ram: memory capacity in GiB (default: this host's).
        image_environments: ``{image: prefix}``: jobs of ``image`` (with or without its tag)
            run with ``<prefix>/bin`` first on ``PATH`` (a venv or conda environment); other
            jobs get the platform's own Python environment first.
        idle_timeout: seconds an idle or half-open connection is kept (keep-alive included).
        kill_grace: SIGTERM -> SIGKILL grace when deleting or expiring a job.
        terminating_delay: kept for compatibility; no effect (a deleted session is gone at
            once, as on the server).
        anonymous_status: 400 (the server's answer) or 401 without credentials.
        inherit_env: run jobs with this process's whole environment (default: minimal).
        metrics_interval: seconds between CPU/RAM samples of running jobs (0: off).
        memory_interval: seconds between memory checks of running jobs against their limit.
        faults: initial fault knobs (also changeable later through :attr:`faults`).

    Attributes:
        url: base URL including ``/skaha/v1`` (no trailing slash), for ``Session(url=...)``.
        token: the bearer token.
        arc: the storage root (the local path of the jobs' ``/arc``).
        storage: the storage root and whether jobs see it at ``/arc`` (once started).
        faults: runtime fault knobs (:class:`~canfar_widgets.local.faults.Faults`).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        username: str | None = None,
        users: Mapping[str, str] | None = None,
        start_delay: float = 1.0,
        headless_start_delay: float = 0.1,
        finished_ttl: float | None = None,
        session_expiry: int = 345600,
        headless_expiry: int = 1209600,
        max_sessions: int = 5,
        allowed_hosts: Sequence[str] = ("images.canfar.net",),
        images: Sequence[Mapping[str, Any]] | None = None,
        context: Mapping[str, Any] | None = None,
        workdir: str | Path | None = None,
        arc: str | Path | None = None,
        mount_arc: bool = True,
        cores: float | None = None,
        ram: float | None = None,
        image_environments: Mapping[str, str | Path] | None = None,
        idle_timeout: float = 30.0,
        kill_grace: float = 2.0,
        terminating_delay: float = 0.3,
        anonymous_status: int = 400,
        inherit_env: bool = False,
        metrics_interval: float = 2.0,
        memory_interval: float = 0.25,
        faults: Faults | None = None,
    ) -> None:
        if token is not None and not token:
            raise ValueError("token must not be empty")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        environments = []
        for image, prefix in (image_environments or {}).items():
            if not (Path(prefix) / "bin").is_dir():
                raise ValueError(
                    f"image_environments[{image!r}]: {prefix} has no bin folder, "
                    "so it is not an environment prefix"
                )
            environments.append((str(image), str(Path(prefix).resolve())))
        self.host = host
        self._requested_port = port
        self.token = token or secrets.token_urlsafe(32)
        settings_kw: dict[str, Any] = {}
        if images is not None:
            settings_kw["images"] = tuple(images)
        self.settings = Settings(
            username=username or default_username(),
            start_delay=start_delay,
            headless_start_delay=headless_start_delay,
            finished_ttl=finished_ttl,
            session_expiry=int(session_expiry),
            headless_expiry=int(headless_expiry),
            max_sessions=max_sessions,
            allowed_hosts=tuple(allowed_hosts),
            context=context,
            kill_grace=kill_grace,
            terminating_delay=terminating_delay,
            anonymous_status=anonymous_status,
            inherit_env=inherit_env,
            metrics_interval=metrics_interval,
            memory_interval=memory_interval,
            cores=float(cores) if cores is not None else host_cores(),
            ram=float(ram) if ram is not None else _default_ram(cores, context),
            image_environments=tuple(environments),
            **settings_kw,
        )
        self.arc = Path(arc).expanduser().resolve() if arc is not None else default_arc()
        self.mount_arc = mount_arc
        self.idle_timeout = float(idle_timeout)
        self.storage: Storage | None = None
        tokens = {self.token: self.settings.username, **(users or {})}
        self.users = Users(tokens, anonymous_status=anonymous_status)
        self.faults = faults or Faults()
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = None
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._store: SessionStore | None = None
        self._state: AppState | None = None
        self._supervisor: Supervisor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        state = f"url={self.url!r}" if self.running else "stopped"
        return f"<LocalPlatform {state} user={self.settings.username!r}>"

    # ------------------------------------------------------------------ URLs
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def base(self) -> str:
        """``http://host:port`` (what connect URLs start with)."""
        if self.port is None:
            raise RuntimeError("the platform is not started")
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:40123/skaha/v1``."""
        return self.base + "/skaha/v1"

    @property
    def username(self) -> str:
        return self.settings.username

    # ------------------------------------------------------------- lifecycle
    def start(self) -> LocalPlatform:
        """Bind, start serving in the background, and return ``self`` once it answers."""
        with self._lock:
            if self.running:
                return self
            _raise_file_limit()
            sockets = _bind_sockets(self.host, self._requested_port)
            self.port = sockets[0].getsockname()[1]
            try:
                if self._workdir_arg is None:
                    self.workdir = Path(tempfile.mkdtemp(prefix="canfar-local-"))
                else:
                    self.workdir = self._workdir_arg
                    self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(self.workdir, 0o700)  # logs and state are the user's only
                self.storage = Storage.prepare(self.arc, mount=self.mount_arc)
                if not self.storage.mounted:
                    log.warning(
                        "jobs will not see %s at /arc (%s): their HOME is %s/home/<user>",
                        self.arc,
                        self.storage.note,
                        self.arc,
                    )
                self._supervisor = Supervisor.start()
            except BaseException:
                for sock in sockets:
                    sock.close()
                self._close_supervisor()
                self._cleanup_workdir()
                raise
            ready: Future[None] = Future()
            self._thread = threading.Thread(
                target=self._serve, args=(sockets, ready), name="canfar-local-platform", daemon=True
            )
            self._thread.start()
            try:
                ready.result(timeout=30)
            except BaseException:
                self._thread.join(timeout=5)
                self._thread = None
                self._close_supervisor()
                self._cleanup_workdir()
                raise
            try:
                discovery.announce(url=self.url, arc=self.arc, port=self.port)
            except OSError as exc:
                log.warning("cannot announce the platform in %s: %s", discovery.directory(), exc)
            # A daemon thread dies silently at interpreter exit: stop first, so no job survives.
            atexit.register(self.stop)
            if not is_loopback(self.host):
                log.warning(
                    "local platform bound to %s: anyone who can reach it and has the "
                    "token can run commands on this machine",
                    self.host,
                )
            return self

    def _serve(self, sockets: list[socket.socket], ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._setup(sockets))
        except BaseException as exc:
            for sock in sockets:
                sock.close()
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _setup(self, sockets: list[socket.socket]) -> None:
        assert self.workdir is not None
        self._store = SessionStore(
            self.settings,
            self.workdir,
            base_url=self.base,
            faults=self.faults,
            storage=self.storage,
            supervisor=self._supervisor,
        )
        restored = self._store.restore()
        if restored:
            log.info("restored %d session(s) from %s", restored, self.workdir)
        state = AppState(
            store=self._store, users=self.users, settings=self.settings, faults=self.faults
        )
        self._state = state
        # Idle keep-alive and half-open connections (no complete request within the timeout)
        # are closed, so a flood of them cannot hold the server's sockets for an hour.
        self._server = tornado.httpserver.HTTPServer(
            make_app(state),
            xheaders=False,
            idle_connection_timeout=self.idle_timeout,
            body_timeout=self.idle_timeout,
            max_body_size=16 * 2**20,
        )
        self._server.add_sockets(sockets)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving, kill every job's process group, and remove the temp workdir.

        Idempotent. Returns once no process started by the platform is left.
        """
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            try:
                if thread.is_alive():
                    fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                    try:
                        fut.result(timeout=timeout)
                    finally:
                        loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=timeout)
            finally:
                self._thread = None
                self._loop = None
                if self.port is not None:
                    discovery.withdraw(self.port)
                self._close_supervisor()
                self._cleanup_workdir()
                atexit.unregister(self.stop)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._store is not None:
            await self._store.shutdown()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.close_all_connections(), 5)
            except asyncio.TimeoutError:
                log.warning("some connections did not close in time")

    def _close_supervisor(self) -> None:
        if self._supervisor is not None:
            self._supervisor.close()
            self._supervisor = None

    def _cleanup_workdir(self) -> None:
        if self._workdir_arg is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LocalPlatform:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalPlatform:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ---------------------------------------------------------------- clients
    def session(self, **kwargs: Any) -> Any:
        """This project's ``canfar_widgets.sessions.Session`` pointed at the platform."""
        from canfar_widgets.sessions import Session  # lazy: the client is optional here

        return Session(url=self.url, token=self.token, **kwargs)

    def async_session(self, **kwargs: Any) -> Any:
        """This project's ``canfar_widgets.sessions.AsyncSession`` pointed at the platform."""
        from canfar_widgets.sessions import AsyncSession

        return AsyncSession(url=self.url, token=self.token, **kwargs)

    # ------------------------------------------------------- direct inspection
    def call(self, fn: Callable[[SessionStore], T], timeout: float = 30.0) -> T:
        """Run ``fn(store)`` on the platform loop and return its result (tests, tools)."""
        loop, store = self._loop, self._store
        if loop is None or store is None or not self.running:
            raise RuntimeError("the platform is not started")

        async def hop() -> T:
            return fn(store)

        return asyncio.run_coroutine_threadsafe(hop(), loop).result(timeout)

    def preload(
        self,
        count: int,
        *,
        kind: str = "headless",
        status: str = "Completed",
        image: str = "images.canfar.net/skaha/terminal:1.1.2",
        name: str = "preload",
    ) -> list[str]:
        """Add ``count`` of the platform user's sessions directly, without processes.

        For benchmarks and demos that need many records (the interactive limit does not
        apply). Example: ``platform.preload(1000)`` -> 1,000 Completed headless sessions.
        """
        user = self.users.get(self.settings.username)
        assert user is not None
        return self.call(
            lambda s: s.preload(user, count, kind=kind, status=status, image=image, name=name)
        )

    def sessions(self) -> list[dict[str, Any]]:
        """Every session and desktop-app of every user, as the API renders them."""
        return self.call(lambda s: s.snapshot())

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many API requests the platform received (refused and faulted ones included).

        ``method`` filters by HTTP method; ``path`` is relative to ``/skaha/v1/`` with only
        its ``view`` kept: ``"session"`` (listings and creates), ``"session?view=stats"``,
        ``"session/<id>?view=logs"``, ``"context"``... Counts survive :meth:`stop` until the
        next :meth:`start`. For tests that must prove a request was (not) made.

        Example:
            >>> platform.request_count("POST", "session")   # create attempts so far
            3
        """
        state = self._state
        if state is None:
            return 0
        if self.running:
            counts = self.call(lambda _store: dict(state.requests))
        else:
            counts = dict(state.requests)
        return sum(
            n
            for (m, p), n in counts.items()
            if (method is None or m == method.upper()) and (path is None or p == path)
        )

    def process_group(self, session_id: str) -> int | None:
        """The process group id of a headless session's job, once it was started."""
        return self.call(lambda s: j.pgid if (j := s.job_of(session_id)) is not None else None)
