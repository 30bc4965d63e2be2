"""``Session`` and ``AsyncSession``: the CANFAR session client, compatible with ``canfar`` 1.5.2.

Why one implementation: the official client keeps two parallel copies of every policy
(sync and async) that drift apart. Here ``AsyncSession`` implements each policy once and
``Session`` is generated from it: every sync method is ``get_runner().run(<the async
coroutine>)``, with the same signature and docstring.

Where things run:

- All network I/O happens on the runner loop (:mod:`canfar_widgets.runner`): public
  coroutines validate their arguments where they are awaited, then hop there with
  ``runner.arun``. So one ``AsyncSession`` can be awaited from a notebook's kernel loop,
  a user's ``asyncio.run``, uvloop, and polled by widgets on the runner, at the same time.
- What is shown to the user (``verbose=True`` text, ``connect()`` links, browser tabs,
  warnings) happens in the caller's thread, so Jupyter puts it under the right cell.

Failure policy (``errors=``, per client and per call, default ``"ignore"``): a failed item is
left out (``info``, ``create``) or reported as ``False`` (``destroy``, ``renew``) and logged at
WARNING with its id and error class/status only; ``"raise"`` raises the typed error of the
first failed item (in input order) after every request has finished. ``fetch`` and
``stats`` always raise. A create POST is never retried.

Example:
    >>> from canfar_widgets import Session
    >>> with Session() as session:
    ...     ids = session.create("hello", image="skaha/terminal:1.1.2", cmd="echo",
    ...                          args="hi", replicas=3)
    ...     session.wait(ids, until="finished")
    ...     print(session.logs(ids))
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from canfar_widgets.errors import APIError
from canfar_widgets.runner import get_runner
from canfar_widgets.wire import Wire, create_form

# canfar_widgets.config and .models (and with them pydantic, ssl contexts, PyYAML) load on
# first use, not at import: they are ~40% of this module's import time, and a process that
# only imports it (a CLI's --help, a batch job's setup) need not pay for them.
if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType
    from typing import Concatenate, ParamSpec

    from typing_extensions import Self

    from canfar_widgets.config import ClientSettings
    from canfar_widgets.models import ContainerRegistry, Context, CreateRequest, Image, Kind, Status

    P = ParamSpec("P")

__all__ = ["AsyncSession", "Errors", "Session", "connection_url"]

log = logging.getLogger(__name__)
R = TypeVar("R")

Errors = Literal["ignore", "raise"]
_POLICIES = ("ignore", "raise")

# destroy_with(): a selector with any of these is a regular expression, else a literal prefix.
_REGEX_META = frozenset(".^$*+?{}[]()|")

# wait(): statuses after which a session will not change any more.
_FINISHED = ("Completed", "Failed")

_BOLD_CYAN = "\x1b[1;36m"
_RESET = "\x1b[0m"


def connection_url(session: dict[str, Any]) -> str | None:
    """The URL to open a session, only when it is ``Running`` and has one (as ``canfar``)."""
    value = session.get("connectURL")
    if session.get("status") != "Running" or not isinstance(value, str):
        return None
    return value or None


class _Client:
    """What both clients share: construction, settings, ``repr`` and closing."""

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        certificate: str | None = None,
        timeout: float | None = None,
        concurrency: int | None = None,
        config: Any = None,
        errors: Errors | None = None,
        server: str | None = None,
        version: str | None = None,
        registry: ContainerRegistry | None = None,
        loglevel: int | str | None = None,
        transport: httpx.AsyncBaseTransport | httpx.BaseTransport | None = None,
        **unknown: Any,
    ) -> None:
        from canfar_widgets.config import resolve_settings

        settings = resolve_settings(
            url=url,
            token=token,
            certificate=certificate,
            timeout=timeout,
            concurrency=concurrency,
            config=config,
            errors=errors,
            server=server,
            version=version,
            registry=registry,
            loglevel=loglevel,
            **unknown,
        )
        self._adopt(_Shared(settings, Wire(settings, transport=transport)))

    def _adopt(self, shared: _Shared) -> None:
        self._shared = shared
        self._settings = shared.settings
        self._wire = shared.wire

    # -- settings --------------------------------------------------------------------------

    @property
    def errors(self) -> Errors:
        """The default failure policy of this client: ``"ignore"`` or ``"raise"``."""
        return self._shared.errors

    @errors.setter
    def errors(self, value: Errors) -> None:
        self._shared.errors = _check_policy(value)

    @property
    def url(self) -> str:
        """The API base URL, ending with ``/``."""
        return str(self._settings.base_url)

    @property
    def concurrency(self) -> int:
        """The most requests in flight at once."""
        return int(self._settings.concurrency)

    @property
    def timeout(self) -> float:
        """Seconds allowed for each network step of a request."""
        return float(self._settings.timeout)

    def __repr__(self) -> str:
        # Base URL and auth mode only: never a token or a registry secret.
        return f"{type(self).__name__}(url={self.url!r}, auth={self._settings.mode!r})"

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connection (on the runner). The next call opens a new one."""
        self._wire.close()

    async def aclose(self) -> None:
        """Close the HTTP connection from async code (on the runner)."""
        await self._wire.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Shared:
    """The state a ``Session`` and the ``AsyncSession`` inside it have in common."""

    __slots__ = ("errors", "settings", "wire")

    def __init__(self, settings: ClientSettings, wire: Wire) -> None:
        self.settings = settings
        self.wire = wire
        self.errors: Errors = _check_policy(settings.errors)


class AsyncSession(_Client):
    """The CANFAR session client for ``async`` code (same API as ``canfar.sessions.AsyncSession``).

    Args:
        url: the API base URL, e.g. ``https://ws-uv.canfar.net/skaha/v1`` (else ``CANFAR_URL``,
            else the active server of ``~/.canfar/config.yaml``).
        token: a bearer token (else ``CANFAR_TOKEN``, else the saved login).
        certificate: a PEM file with an X.509 certificate and key.
        timeout: seconds for each network step (default 30).
        concurrency: the most requests in flight at once (default 32).
        config: a ``Configuration`` or a path to a ``config.yaml``.
        errors: the default failure policy, ``"ignore"`` (default) or ``"raise"``.
        server, version, registry, loglevel: older ``canfar``/``skaha`` keywords, still honoured.
        transport: an httpx transport to use instead of the network (tests, benchmarks).

    Works with ``async with`` and, inside async code, with a plain ``with`` (the ``canfar``
    documentation uses both); closing always happens on the runner.

    Example:
        >>> async with AsyncSession() as session:
        ...     running = await session.fetch(kind="notebook", status="Running")
    """

    # -- listing ----------------------------------------------------------------------------

    async def fetch(
        self, kind: Kind | None = None, status: Status | None = None
    ) -> list[dict[str, Any]]:
        """List your sessions, optionally filtered by the server (raw JSON records).

        ``status="Succeeded"``/``"Error"`` (from older documentation) are sent as the words
        servers use, ``Completed``/``Failed``. Always raises on failure.

        Example:
            >>> await session.fetch(kind="headless", status="Completed")
            [{'id': 'q2w8e4r6', 'name': 'batch-1', 'status': 'Completed', ...}]
        """
        params = _fetch_params(kind, status)
        response = await self._wire.get("session", params=params)
        data: list[dict[str, Any]] = response.json()
        return data

    async def stats(self) -> dict[str, Any]:
        """Platform load (``GET session?view=stats``), unchanged from the server. Always raises.

        Example:
            >>> stats = await session.stats()
            >>> stats["cores"]
            {'requestedCPUCores': 12.5, 'cpuCoresAvailable': 64.0, ...}
        """
        response = await self._wire.get("session", params={"view": "stats"})
        data: dict[str, Any] = response.json()
        return data

    async def info(self, ids: str | list[str], *, errors: Errors | None = None) -> list[dict[str, Any]]:
        """Details of sessions ``ids``: the records that could be read, in input order.

        With ``errors="ignore"`` a failed id is left out, so match records by their ``id``.

        Example:
            >>> records = await session.info(["k3x9ab2q", "q2w8e4r6"])
            >>> [r["status"] for r in records]
            ['Running', 'Pending']
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return []
        return await get_runner().arun(self._info(keys, policy))

    async def _info(self, keys: list[str], policy: Errors) -> list[dict[str, Any]]:
        outcomes = await _gather(self._json_record(key) for key in keys)
        return [record for _, record in _settle("info", keys, outcomes, policy)]

    async def _json_record(self, key: str) -> dict[str, Any]:
        response = await self._wire.get(_session_path(key))
        try:
            data = response.json()
        except ValueError:
            raise _Unexpected(f"session {key}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise _Unexpected(f"session {key} is not a JSON object")
        return data

    async def logs(
        self, ids: str | list[str], verbose: bool = False, *, errors: Errors | None = None
    ) -> dict[str, str] | None:
        """Container logs ``{id: text}``; with ``verbose=True`` prints them and returns None.

        Example:
            >>> texts = await session.logs("q2w8e4r6")
            >>> print(texts["q2w8e4r6"])
            Hello, World!
            >>> await session.logs(["q2w8e4r6", "k3x9ab2q"], verbose=True)
            ── Session q2w8e4r6 ──
            Hello, World!
            ...
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        texts = await get_runner().arun(self._texts("logs", keys, policy)) if keys else []
        if verbose:
            _present(functools.partial(_print_texts, texts))
            return None
        return dict(texts)

    async def events(
        self, ids: str | list[str], verbose: bool = False, *, errors: Errors | None = None
    ) -> list[dict[str, str]] | None:
        """Kubernetes events ``[{id: text}, ...]``; with ``verbose=True`` prints them, returns None.

        The text is the server's table (``TYPE REASON MESSAGE FIRST-TIME LAST-TIME``);
        ``canfar_widgets.models.parse_events`` turns it into ``Event`` records.

        Example:
            >>> await session.events("k3x9ab2q")
            [{'k3x9ab2q': 'TYPE     REASON      MESSAGE ...'}]
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        texts = await get_runner().arun(self._texts("events", keys, policy)) if keys else []
        if verbose:
            _present(functools.partial(_print_texts, texts))
            return None
        return [{key: text} for key, text in texts]

    async def _texts(self, view: str, keys: list[str], policy: Errors) -> list[tuple[str, str]]:
        async def one(key: str) -> str:
            response = await self._wire.get(_session_path(key), params={"view": view})
            return response.text

        outcomes = await _gather(one(key) for key in keys)
        return _settle(view, keys, outcomes, policy)

    # -- lifecycle of sessions ----------------------------------------------------------------

    async def create(
        self,
        name: str | CreateRequest,
        image: str | None = None,
        cores: int | None = None,
        ram: int | None = None,
        kind: Kind = "headless",
        gpu: int | None = None,
        cmd: str | None = None,
        args: str | None = None,
        env: dict[str, Any] | None = None,
        replicas: int = 1,
        *,
        errors: Errors | None = None,
        registry: ContainerRegistry | None = None,
    ) -> list[str]:
        """Launch ``replicas`` sessions; returns their ids in replica order.

        ``name`` may be a ready ``CreateRequest`` (its own ``replicas`` then apply). Leaving
        ``cores`` and ``ram`` out asks for flexible resources. Each session gets
        ``REPLICA_ID`` (1-based) and ``REPLICA_COUNT`` in its environment, and a ``-<n>``
        name suffix when ``replicas > 1``. Replicas are POSTed concurrently (at most
        ``concurrency`` at once); a POST is never retried, since that could launch twice.
        With ``errors="ignore"`` failed replicas are left out (so check the length);
        ``"raise"`` raises the first failure once every POST has finished. ``registry``
        credentials (for a private image) apply to this call only.

        Example:
            >>> await session.create("job", image="skaha/terminal:1.1.2", cmd="env",
            ...                      env={"MODE": "test"}, replicas=2)
            ['q2w8e4r6', 'k3x9ab2q']
        """
        policy = self._policy(errors)
        request = _create_request(name, image, cores, ram, kind, gpu, cmd, args, env, replicas)
        headers = _registry_headers(registry)
        return await get_runner().arun(self._create(request, policy, headers))

    async def _create(
        self, request: CreateRequest, policy: Errors, headers: dict[str, str] | None
    ) -> list[str]:
        total = int(request.replicas)
        log.debug("creating %d %s session(s)", total, request.kind)

        async def one(replica: int) -> str:
            form = create_form(request, replica, total)
            response = await self._wire.post("session", form, headers=headers)
            return response.text.rstrip("\r\n")

        replicas = list(range(1, total + 1))
        outcomes = await _gather(one(replica) for replica in replicas)
        labels = [f"replica {replica}/{total}" for replica in replicas]
        return [key for _, key in _settle("create", labels, outcomes, policy)]

    async def destroy(self, ids: str | list[str], *, errors: Errors | None = None) -> dict[str, bool]:
        """Delete sessions; ``{id: True}`` for each deleted, ``False`` for each failure.

        Example:
            >>> await session.destroy(["q2w8e4r6", "k3x9ab2q"])
            {'q2w8e4r6': True, 'k3x9ab2q': True}
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return {}
        return await get_runner().arun(self._each("destroy", keys, policy, self._delete_one))

    async def _delete_one(self, key: str) -> None:
        await self._wire.delete(_session_path(key))

    async def renew(self, ids: str | list[str], *, errors: Errors | None = None) -> dict[str, bool]:
        """Push back the expiry of interactive sessions; ``{id: renewed?}``.

        Example:
            >>> await session.renew("k3x9ab2q")
            {'k3x9ab2q': True}
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return {}
        return await get_runner().arun(self._each("renew", keys, policy, self._renew_one))

    async def _renew_one(self, key: str) -> None:
        await self._wire.post(_session_path(key), [("action", "renew")])

    async def _each(
        self,
        operation: str,
        keys: list[str],
        policy: Errors,
        call: Callable[[str], Awaitable[None]],
    ) -> dict[str, bool]:
        outcomes = await _gather(call(key) for key in keys)
        done = {key for key, _ in _settle(operation, keys, outcomes, policy)}
        return {key: key in done for key in keys}

    async def destroy_with(
        self,
        prefix: str,
        *,
        kind: Kind = "headless",
        status: Status = "Completed",
        errors: Errors | None = None,
    ) -> dict[str, bool]:
        """Delete the sessions of ``kind`` and ``status`` whose name matches ``prefix``.

        ``prefix`` is a literal name prefix unless it holds a regex character
        (``.^$*+?{}[]()|``); then it is a regular expression searched anywhere in the name.

        Example:
            >>> await session.destroy_with("batch-")              # literal prefix
            {'q2w8e4r6': True}
            >>> await session.destroy_with(r"-\\d+$", status="Failed")   # regex
        """
        pattern = _name_pattern(prefix)
        _fetch_params(kind, status)  # reject bad literals before any request
        policy = self._policy(errors)
        sessions = await self.fetch(kind=kind, status=status)
        matching = [
            str(item["id"])
            for item in sessions
            if isinstance(item.get("name"), str) and pattern.search(item["name"]) and "id" in item
        ]
        return await self.destroy(matching, errors=policy)

    async def connect(self, ids: str | list[str]) -> None:
        """Open Running sessions: clickable links in Jupyter, browser tabs elsewhere.

        A session that is not Running yet gets a warning instead.

        Example:
            >>> await session.connect("k3x9ab2q")
        """
        records = await self.info(ids)
        _present(functools.partial(_open_sessions, records))

    async def wait(
        self,
        ids: str | list[str],
        until: Literal["Running", "finished"] = "Running",
        timeout: float = 300,
        interval: float = 2,
        *,
        errors: Errors | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until every session is ``Running`` (or ``"finished"``: Completed/Failed).

        Returns the final records in input order. A session that ends (Completed, Failed,
        Terminating) while waiting for Running is returned as it is, rather than waited on
        forever.

        Raises:
            TimeoutError: after ``timeout`` seconds, naming the ids still waited for.

        Example:
            >>> ids = await session.create("nb", image="skaha/astroml", kind="notebook")
            >>> [record] = await session.wait(ids, until="Running", timeout=600)
            >>> record["connectURL"]
        """
        if until not in ("Running", "finished"):
            raise ValueError(f"until must be 'Running' or 'finished', not {until!r}")
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return []
        return await get_runner().arun(self._wait(keys, until, timeout, interval, policy))

    async def _wait(
        self, keys: list[str], until: str, timeout: float, interval: float, policy: Errors
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        final: dict[str, dict[str, Any]] = {}
        pending = list(dict.fromkeys(keys))
        while True:
            for record in await self._info(pending, policy):
                key = str(record.get("id", ""))
                if key in pending and _settled(str(record.get("status", "")), until):
                    final[key] = record
            pending = [key for key in pending if key not in final]
            if not pending:
                return [final[key] for key in keys]
            left = deadline - loop.time()
            if left <= 0:
                word = "Running" if until == "Running" else "finished"
                raise TimeoutError(
                    f"sessions not {word} after {timeout:g} s: {', '.join(pending)}"
                )
            await asyncio.sleep(min(interval, left))

    # -- platform ------------------------------------------------------------------------------

    async def images(self, kind: Kind | None = None) -> list[Image]:
        """Images you may launch (``GET image``), optionally only those labelled ``kind``.

        Example:
            >>> images = await session.images("notebook")
            >>> [image.id for image in images]
            ['images.canfar.net/skaha/astroml:latest', ...]
        """
        from canfar_widgets.models import Image, server_kind

        params = {"type": server_kind(kind)} if kind is not None else None
        response = await self._wire.get("image", params=params)

        return [Image.model_validate(item) for item in response.json()]

    async def context(self) -> Context:
        """Resource options of the platform (cores, RAM, GPU choices and defaults).

        Example:
            >>> context = await session.context()
            >>> context.cores.options
            [1, 2, 4, 8, 16]
        """
        response = await self._wire.get("context")
        from canfar_widgets.models import Context

        return Context.model_validate(response.json())

    async def repositories(self) -> list[str]:
        """Registry hosts images may come from (``GET repository``).

        Example:
            >>> await session.repositories()
            ['images.canfar.net']
        """
        response = await self._wire.get("repository")
        return [str(item) for item in response.json()]

    # -- helpers -------------------------------------------------------------------------------

    def _policy(self, errors: Errors | None) -> Errors:
        return _check_policy(self._shared.errors if errors is None else errors)


# -- the sync facade ----------------------------------------------------------------------------

# While a Session method runs its coroutine on the runner, what it would show the user is
# queued here and shown afterwards in the caller's thread (Jupyter routes output by thread).
_deferred: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "canfar_widgets_deferred_output", default=None
)


def _present(action: Callable[[], None]) -> None:
    pending = _deferred.get()
    if pending is not None:
        pending.append(action)
    else:
        action()


async def _deferring(coro: Awaitable[R]) -> tuple[R, list[Callable[[], None]]]:
    pending: list[Callable[[], None]] = []
    _deferred.set(pending)  # this task's own context: nothing outside sees it
    return await coro, pending


def _sync(
    method: Callable[Concatenate[AsyncSession, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Session, P], R]:
    """The blocking twin of an ``AsyncSession`` coroutine method (same signature and doc)."""

    @functools.wraps(method)
    def blocking(self: Session, *args: P.args, **kwargs: P.kwargs) -> R:
        result, shown = get_runner().run(_deferring(method(self._async, *args, **kwargs)))
        for action in shown:
            action()
        return result

    blocking.__doc__ = (method.__doc__ or "").replace("await ", "")
    return blocking


class Session(_Client):
    """The CANFAR session client for plain code (same API as ``canfar.sessions.Session``).

    Each method runs the matching ``AsyncSession`` coroutine on the runner and waits for it:
    it works in scripts, in Jupyter cells (the kernel's loop is never re-entered) and inside
    async code (blocking it; prefer ``AsyncSession`` there). Ctrl-C or a kernel interrupt
    cancels the requests in flight. Replicas and multi-id calls still run concurrently.

    Takes the same keywords as :class:`AsyncSession`.

    Example:
        >>> with Session(timeout=60) as session:
        ...     session.fetch(kind="headless")
    """

    def _adopt(self, shared: _Shared) -> None:
        super()._adopt(shared)
        async_session = AsyncSession.__new__(AsyncSession)
        async_session._adopt(shared)
        self._async = async_session

    @property
    def async_session(self) -> AsyncSession:
        """The ``AsyncSession`` behind this client (same connection and policy), to ``await``."""
        return self._async

    fetch = _sync(AsyncSession.fetch)
    stats = _sync(AsyncSession.stats)
    info = _sync(AsyncSession.info)
    logs = _sync(AsyncSession.logs)
    events = _sync(AsyncSession.events)
    create = _sync(AsyncSession.create)
    destroy = _sync(AsyncSession.destroy)
    renew = _sync(AsyncSession.renew)
    destroy_with = _sync(AsyncSession.destroy_with)
    connect = _sync(AsyncSession.connect)
    wait = _sync(AsyncSession.wait)
    images = _sync(AsyncSession.images)
    context = _sync(AsyncSession.context)
    repositories = _sync(AsyncSession.repositories)


# -- policy helpers ---------------------------------------------------------------------------------


class _Unexpected(httpx.HTTPError):
    """A 2xx answer of the wrong shape; an item failure like any HTTP error."""


def _check_policy(value: Any) -> Errors:
    if value not in _POLICIES:
        raise ValueError(f"errors must be 'ignore' or 'raise', not {value!r}")
    return value  # type: ignore[no-any-return]


def _ids(ids: str | Iterable[str]) -> list[str]:
    """One id or many -> a list, order and duplicates kept (as ``canfar``).

    Checked before any request: an empty id would address ``session/``, which a real
    server answers with *some* session, and a ``/`` would reach another endpoint.
    """
    keys = [ids] if isinstance(ids, str) else [str(key) for key in ids]
    for key in keys:
        if not key or any(char in key for char in "/?#"):
            raise ValueError(f"invalid session id: {key!r}")
    return keys


def _session_path(key: str) -> str:
    return f"session/{key}"


def _fetch_params(kind: str | None, status: str | None) -> dict[str, str]:
    from canfar_widgets.models import server_kind, server_status

    params: dict[str, str] = {}
    if kind is not None:
        params["type"] = server_kind(kind)
    if status is not None:
        params["status"] = server_status(status)
    return params


def _name_pattern(prefix: str) -> re.Pattern[str]:
    regex = any(char in _REGEX_META for char in prefix)
    source = prefix if regex else "^" + re.escape(prefix)
    try:
        return re.compile(source)
    except re.error as err:
        raise ValueError(f"Invalid regex pattern '{prefix}': {err}") from err


def _create_request(
    name: str | CreateRequest,
    image: str | None,
    cores: int | None,
    ram: int | None,
    kind: str,
    gpu: int | None,
    cmd: str | None,
    args: str | None,
    env: dict[str, Any] | None,
    replicas: int,
) -> CreateRequest:
    from canfar_widgets.models import CreateRequest

    if isinstance(name, CreateRequest):
        return name
    if image is None:
        raise TypeError("image is required when creating a Session from scalar arguments")
    return CreateRequest(
        name=name,
        image=image,
        cores=cores,
        ram=ram,
        kind=kind,
        gpu=gpu,
        cmd=cmd,
        args=args,
        env=env,
        replicas=replicas,
    )


def _registry_headers(registry: ContainerRegistry | None) -> dict[str, str] | None:
    if registry is None:
        return None
    value = registry.header_value()
    if not value:
        raise ValueError("registry needs both a username and a secret")
    from canfar_widgets.auth import REGISTRY_HEADER

    return {REGISTRY_HEADER: value}


async def _gather(calls: Iterable[Awaitable[R]]) -> list[R | BaseException]:
    """Run ``calls`` concurrently (the Wire bounds how many are in flight) and keep order."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _settle(
    operation: str,
    keys: Sequence[str],
    outcomes: Sequence[R | BaseException],
    policy: Errors,
) -> list[tuple[str, R]]:
    """Apply the failure policy to per-item outcomes; returns the successes in order.

    Only HTTP failures are per-item; anything else (an authentication failure, a bug) is
    the caller's problem and raises whatever the policy.
    """
    good: list[tuple[str, R]] = []
    failed: list[tuple[str, httpx.HTTPError]] = []
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, httpx.HTTPError):
            failed.append((key, outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            good.append((key, outcome))
    if failed and policy == "raise":
        first = failed[0][1]
        if len(failed) > 1 and hasattr(first, "add_note"):
            others = ", ".join(f"{key} ({_describe(err)})" for key, err in failed[1:])
            first.add_note(f"{operation} also failed for: {others}")
        raise first
    for key, err in failed:
        log.warning("%s failed for %s (%s)", operation, key, _describe(err))
    return good


def _describe(err: BaseException) -> str:
    """Error class and status only: never a message that could quote a request."""
    if isinstance(err, APIError):
        return f"{type(err).__name__} {err.status_code}"
    return type(err).__name__


def _settled(status: str, until: str) -> bool:
    finished = status.startswith(_FINISHED)
    if until == "finished":
        return finished
    return status == "Running" or finished or status == "Terminating"


# -- presentation (caller's thread) -------------------------------------------------------------------


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel), without importing IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def _coloured() -> bool:
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or _in_kernel()


def _print_texts(texts: Sequence[tuple[str, str]]) -> None:
    colour = _coloured()
    for key, text in texts:
        header = f"── Session {key} ──"
        print(f"{_BOLD_CYAN}{header}{_RESET}" if colour else header)
        print(text.rstrip("\n"))


def _open_sessions(records: Sequence[dict[str, Any]]) -> None:
    links: list[tuple[str, str]] = []
    for record in records:
        key = str(record.get("id", "?"))
        status = str(record.get("status", "unknown"))
        url = connection_url(record)
        if url is None:
            if status != "Running":
                warnings.warn(
                    f"Session {key} is {status}; wait until it is Running", stacklevel=2
                )
            continue
        links.append((str(record.get("name") or key), url))
    if not links:
        return
    if _in_kernel():
        import html

        from IPython.display import HTML, display

        items = "".join(
            f'<li><a href="{html.escape(url)}" target="_blank" rel="noopener">'
            f"{html.escape(name)}</a></li>"
            for name, url in links
        )
        display(HTML(f"<ul>{items}</ul>"))
    else:
        import webbrowser  # here, not at module level: it costs ~15 ms of every import

        for _, url in links:
            webbrowser.open_new_tab(url)
