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

Failure policy (``errors=``, per client, per call or ``CANFAR_ERRORS``, default ``"ignore"``):
a failed item is left out (``info``, ``create``) or reported as ``False`` (``destroy``,
``renew``), with one ``SessionWarning`` per call at the caller's line (not a WARNING log
record: the last-resort handler would print it in red under a notebook cell) and an INFO
log record per id with its error class/status only; a create that
launched fewer sessions than asked also warns. ``"raise"`` raises
:class:`~canfar_widgets.errors.SessionRequestError` (as ``canfar``) once every request has
finished; it is also an instance of the first failure's class (``NotFound``...).
``fetch`` and ``stats`` always raise.

Safe create: a create POST is sent again only when it provably never reached the platform.
When its answer is lost after it may have arrived (a timeout, a reset, an interrupt, a 502/504
from a proxy, a 200 that is not a session id), the session is looked for by its exact name
instead (see :meth:`AsyncSession.launch_replicas`); never launched twice.

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
import json
import logging
import re
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from canfar_widgets import launches
from canfar_widgets.errors import (
    AnswerLost,
    APIError,
    LaunchWarning,
    NotFound,
    SessionWarning,
    UnexpectedAnswer,
    add_note,
    session_request_error,
)
from canfar_widgets.reconcile import SESSION_ID, Reconcile, clock_offset, match_lost
from canfar_widgets.runner import explain_interrupt, get_runner
from canfar_widgets.wire import NOT_SENT_ERRORS, Wire, create_form

# canfar_widgets.settings and .models (and with them pydantic, ssl contexts, PyYAML) load on
# first use, not at import: they are ~40% of this module's import time, and a process that
# only imports it (a CLI's --help, a batch job's setup) need not pay for them.
if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime
    from types import TracebackType
    from typing import Concatenate, ParamSpec

    from typing_extensions import Self

    from canfar_widgets.keep_alive import KeepAlive
    from canfar_widgets.models import ContainerRegistry, Context, CreateRequest, Image, Kind, Status
    from canfar_widgets.settings import ClientSettings

    P = ParamSpec("P")

__all__ = [
    "LOG_LIMIT",
    "AsyncSession",
    "Errors",
    "LaunchOutcome",
    "Reconcile",
    "Session",
    "SessionRef",
    "connection_url",
]

log = logging.getLogger(__name__)
R = TypeVar("R")

Errors = Literal["ignore", "raise"]
_POLICIES = ("ignore", "raise")

# destroy_with(): a selector with any of these is a regular expression, else a literal prefix.
_REGEX_META = frozenset(".^$*+?{}[]()|")

# wait(): statuses after which a session will not change any more.
_FINISHED = ("Completed", "Failed")

#: logs(): the most text kept per session, 16 MiB. Past it the head is kept and
#: ``TRUNCATED_MARK`` is appended; ``logs(..., tail=n)`` keeps the last ``n`` lines instead.
LOG_LIMIT = 16 * 2**20
TRUNCATED_MARK = (
    "\n[canfar-widgets: the {what} is longer than {limit}; only its beginning is shown. "
    "logs(ids, tail=N) gives its last N lines]\n"
)

#: What may stand for a session: its id, or its record (a dict with ``"id"``, a SessionRecord).
SessionRef = Any

# A create POST answered with this may still have been acted on (a gateway gave up waiting
# for the platform's answer): look for the session rather than call it failed. A 502 (the
# gateway could not reach or read the platform) and a 503 are reported as failures.
_MAYBE_DONE_STATUSES = frozenset({504})
# Sessions this process created, most recent last: never mistaken for a lost one's twin.
_CREATED_MEMORY = 10_000


@dataclass(frozen=True)
class LaunchOutcome:
    """What became of one replica's create POST (see :meth:`AsyncSession.launch_replicas`).

    Attributes:
        replica: the replica number (1-based), as in ``REPLICA_ID``.
        id: the new session's id, or None when it was not created (or is not known).
        error: why not, when ``id`` is None.
        unknown: the platform may have acted although no id came back (the answer was lost
            and no session of that name was found): ``error`` is an ``AnswerLost``. Do not
            launch it again before looking (``fetch()``).
        reconciled: the answer was lost, but the session was found by its name: ``id`` is it.
        name: the session name this replica asked for (``name-<replica>`` when total > 1).
    """

    replica: int
    id: str | None
    error: BaseException | None = None
    unknown: bool = False
    reconciled: bool = False
    name: str | None = None


_BOLD_CYAN = "\x1b[1;36m"
_RESET = "\x1b[0m"


def connection_url(session: dict[str, Any]) -> str | None:
    """The URL to open a session, only when it is ``Running`` and has one (as ``canfar``)."""
    value = session.get("connectURL")
    if session.get("status") != "Running" or not isinstance(value, str):
        return None
    return value or None


# Keywords the seed documentation's examples use for ``ids`` (``info(id=...)``,
# ``logs(session_id=...)``): accepted with a DeprecationWarning naming ``ids``.
_OLD_ID_KEYWORDS = ("id", "session_id")


def _renamed_ids(
    method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any], stacklevel: int
) -> dict[str, Any]:
    """``kwargs`` with ``id=``/``session_id=`` renamed to ``ids=`` (warning once per call)."""
    old = [key for key in _OLD_ID_KEYWORDS if key in kwargs]
    if not old:
        return kwargs
    if len(old) > 1 or "ids" in kwargs or args:
        given = ", ".join(f"{key}=" for key in old)
        raise TypeError(
            f"{method_name}() got the sessions twice ({given} and ids): pass them once, as ids="
        )
    warnings.warn(
        f"{method_name}({old[0]}=...) is deprecated: the parameter is named ids "
        f"(write {method_name}(ids=...) or pass them first)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    renamed = dict(kwargs)
    renamed["ids"] = renamed.pop(old[0])
    return renamed


def _old_id_keywords(
    method: Callable[..., Coroutine[Any, Any, R]],
) -> Callable[..., Coroutine[Any, Any, R]]:
    """Accept ``id=``/``session_id=`` for ``ids`` (deprecated), keeping ``method``'s signature.

    The rename happens where the coroutine is awaited (the caller's thread); the sync
    facade applies it itself before handing the call to the runner (see :func:`_sync`).
    """

    @functools.wraps(method)
    async def accepting(self: Any, *args: Any, **kwargs: Any) -> R:
        return await method(
            self, *args, **_renamed_ids(method.__name__, args, kwargs, stacklevel=3)
        )

    accepting._renames_ids = True  # type: ignore[attr-defined]
    return accepting


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
        from canfar_widgets.settings import resolve_settings

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
    def reconcile(self) -> Reconcile:
        """How a create whose answer was lost is looked for by name (see :class:`Reconcile`)."""
        return self._shared.reconcile

    @reconcile.setter
    def reconcile(self, value: Reconcile) -> None:
        if not isinstance(value, Reconcile):
            raise TypeError(f"reconcile must be a Reconcile, not {type(value).__name__}")
        self._shared.reconcile = value

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

    __slots__ = ("_created", "errors", "reconcile", "settings", "wire")

    def __init__(self, settings: ClientSettings, wire: Wire) -> None:
        self.settings = settings
        self.wire = wire
        self.errors: Errors = _check_policy(settings.errors)
        self.reconcile = Reconcile()
        self._created: dict[str, None] = {}  # insertion-ordered set, oldest first

    @property
    def created(self) -> set[str]:
        """Ids of sessions this client created (the last ``_CREATED_MEMORY``)."""
        return set(self._created)

    def remember(self, ids: Iterable[str]) -> None:
        for key in ids:
            self._created[key] = None
        while len(self._created) > _CREATED_MEMORY:
            del self._created[next(iter(self._created))]


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
        self,
        kind: Kind | None = None,
        status: Status | None = None,
        *,
        view: Literal["all", "interactive"] | None = None,
    ) -> list[dict[str, Any]]:
        """List your sessions, optionally filtered by the server (raw JSON records).

        ``status="Succeeded"``/``"Error"`` (from older documentation) are sent as the words
        servers use, ``Completed``/``Failed``. ``view="interactive"``: only your non-headless
        sessions (the server then ignores ``kind``); ``view="all"``: every user's sessions,
        each reduced to ``userid``, ``type``, ``status`` and ``startTime`` (no ``id`` or
        ``name``). A bad ``kind``/``status``/``view`` raises pydantic's ``ValidationError``
        naming the allowed values, before any request. Always raises on failure.

        Example:
            >>> await session.fetch(kind="headless", status="Completed")
            [{'id': 'q2w8e4r6', 'name': 'batch-1', 'status': 'Completed', ...}]
            >>> len(await session.fetch(view="all"))     # the whole platform's load
            212
        """
        params = _fetch_params(kind, status, view)
        response = await self._wire.get("session", params=params)
        return _json_list_of_records(response)

    async def stats(self) -> dict[str, Any]:
        """Platform load (``GET session?view=stats``), unchanged from the server. Always raises.

        Example:
            >>> stats = await session.stats()
            >>> stats["cores"]
            {'requestedCPUCores': 12.5, 'cpuCoresAvailable': 64.0, ...}
        """
        response = await self._wire.get("session", params={"view": "stats"})
        data = _json(response)
        if not isinstance(data, dict):
            raise _unexpected(response, f"expected a JSON object, got {_kind_of(data)}")
        return data

    @_old_id_keywords
    async def info(
        self, ids: str | list[str], *, errors: Errors | None = None
    ) -> list[dict[str, Any]]:
        """Details of sessions ``ids``: the records that could be read, in input order.

        ``ids`` may be one id, a list of ids, or session records (dicts with an ``id``,
        ``SessionRecord``), e.g. what ``fetch()`` returned. With ``errors="ignore"`` a
        failed id is left out, so match records by their ``id``.

        Example:
            >>> records = await session.info(["k3x9ab2q", "q2w8e4r6"])
            >>> [r["status"] for r in records]
            ['Running', 'Pending']
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return []
        return await _reporting(self._info(keys, policy))

    async def _info(self, keys: list[str], policy: Errors) -> list[dict[str, Any]]:
        outcomes = await _gather(self._json_record(key) for key in keys)
        good = _settle("info", keys, outcomes, policy, results=lambda g: [r for _, r in g])
        return [record for _, record in good]

    async def _json_record(self, key: str) -> dict[str, Any]:
        response = await self._wire.get(_session_path(key))
        data = _json(response)
        if not isinstance(data, dict):
            raise _unexpected(response, f"expected a JSON object, got {_kind_of(data)}")
        return data

    @_old_id_keywords
    async def logs(
        self,
        ids: str | list[str],
        verbose: bool = False,
        *,
        errors: Errors | None = None,
        tail: int | None = None,
    ) -> dict[str, str] | None:
        """Container logs ``{id: text}``; with ``verbose=True`` prints them and returns None.

        ``verbose=True`` prints to stdout (under a ``── Session <id> ──`` header), as the
        seed documentation says; ``canfar`` 1.5.2 logs it at INFO instead. A log longer
        than :data:`LOG_LIMIT` (16 MiB) is cut there with a marker line saying so;
        ``tail=n`` keeps only its last ``n`` lines (the whole log is read, but never held
        in memory).

        Example:
            >>> texts = await session.logs("q2w8e4r6")
            >>> print(texts["q2w8e4r6"])
            Hello, World!
            >>> await session.logs("q2w8e4r6", tail=20)     # the last 20 lines
            >>> await session.logs(["q2w8e4r6", "k3x9ab2q"], verbose=True)
            ── Session q2w8e4r6 ──
            Hello, World!
            ...
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise ValueError(f"tail must be a whole number of lines >= 0, not {tail!r}")
        texts = await _reporting(self._texts("logs", keys, policy, tail)) if keys else []
        if verbose:
            _present(functools.partial(_print_texts, texts))
            return None
        return dict(texts)

    @_old_id_keywords
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
        texts = await _reporting(self._texts("events", keys, policy)) if keys else []
        if verbose:
            _present(functools.partial(_print_texts, texts))
            return None
        return [{key: text} for key, text in texts]

    async def _texts(
        self, view: str, keys: list[str], policy: Errors, tail: int | None = None
    ) -> list[tuple[str, str]]:
        async def one(key: str) -> str:
            path, params = _session_path(key), {"view": view}
            if tail is not None:
                # Lines are short: 64 KiB a line is room enough, and memory stays bounded.
                limit = min(LOG_LIMIT, max(1, tail) * 65536)
                answer = await self._wire.get_text(path, params, limit=limit, tail=True)
                lines = answer.text.splitlines(keepends=True)
                return "".join(lines[-tail:]) if tail else ""
            what = "log" if view == "logs" else "event table"
            mark = TRUNCATED_MARK.format(what=what, limit=f"{LOG_LIMIT // 2**20} MiB")
            # The wire appends the mark to a cut text itself: adding it here would copy the
            # whole 16 MiB once more.
            answer = await self._wire.get_text(path, params, limit=LOG_LIMIT, mark=mark)
            return answer.text

        outcomes = await _gather(one(key) for key in keys)
        if view == "logs":
            shape: Callable[[list[tuple[str, str]]], Any] = dict
        else:
            shape = lambda good: [{k: t} for k, t in good]  # noqa: E731
        return _settle(view, keys, outcomes, policy, results=shape)

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
        ``concurrency`` at once).

        Never launches twice: a POST is sent again only when it provably did not reach the
        platform (connection refused, connect timeout, 429). When an answer is lost after
        the request may have arrived, the session is looked for by its exact name: found,
        it counts as created (logged at INFO); not found, its outcome is *unknown*.

        With ``errors="ignore"`` failed replicas are left out and a ``LaunchWarning`` says
        how many were launched and why the others were not; ``"raise"`` raises
        ``SessionRequestError`` (``OutcomeUnknown`` when an outcome is unknown) once every
        POST has finished, its ``errors`` keyed by replica number. ``registry``
        credentials (for a private image) apply to this call only.

        Example:
            >>> await session.create("job", image="skaha/terminal:1.1.2", cmd="env",
            ...                      env={"MODE": "test"}, replicas=2)
            ['q2w8e4r6', 'k3x9ab2q']
        """
        policy = self._policy(errors)
        request = _create_request(name, image, cores, ram, kind, gpu, cmd, args, env, replicas)
        headers = _registry_headers(registry)
        ids, problems = await get_runner().arun(self._create(request, policy, headers))
        if problems:
            _present(functools.partial(_warn_launch, problems))
        return ids

    async def launch_replicas(
        self,
        request: CreateRequest,
        replicas: Sequence[int] | None = None,
        *,
        total: int | None = None,
        registry: ContainerRegistry | None = None,
    ) -> list[LaunchOutcome]:
        """Launch some replicas of ``request`` and report each one's outcome; never raises per item.

        Why: a batch re-runs replica 6 of 12 as ``name-6`` with ``REPLICA_ID=6`` and
        ``REPLICA_COUNT=12``, which ``create()`` cannot express, and it needs to know which
        replica failed and how. The wire requests are exactly those of ``create()``, with
        the same safe-create policy: an outcome is ``id`` (created), ``reconciled`` (the
        answer was lost, the session found by name), ``unknown`` (lost and not found: do
        not re-launch before looking) or a plain ``error`` (certainly not created).
        ``replicas`` defaults to ``1..total``; ``total`` to ``request.replicas``.

        Example:
            >>> request = CreateRequest(name="scan", image="skaha/terminal:1.1.2", cmd="env")
            >>> [o.id for o in await session.launch_replicas(request, [6], total=12)]
            ['q2w8e4r6']
        """
        count = int(total if total is not None else request.replicas)
        chosen = list(replicas) if replicas is not None else list(range(1, count + 1))
        for replica in chosen:
            if not 1 <= int(replica) <= count:
                raise ValueError(f"replicas: {replica} is not between 1 and total ({count})")
        headers = _registry_headers(registry)
        return await get_runner().arun(self._launch(request, chosen, count, headers))

    async def _launch(
        self,
        request: CreateRequest,
        replicas: Sequence[int],
        total: int,
        headers: dict[str, str] | None,
    ) -> list[LaunchOutcome]:
        log.debug("creating %d of %d %s session(s)", len(replicas), total, request.kind)
        began = time.time()
        forms = {replica: create_form(request, replica, total) for replica in replicas}
        names = {replica: _form_name(forms[replica]) for replica in replicas}
        in_flight: set[int] = set()

        async def one(replica: int) -> str:
            try:
                response = await self._sent(
                    forms[replica], headers, on_send=functools.partial(in_flight.add, replica)
                )
            except asyncio.CancelledError:
                raise  # interrupted while sending: stays in flight, its outcome unknown
            except BaseException:
                in_flight.discard(replica)
                raise
            in_flight.discard(replica)
            key = response.text.rstrip("\r\n")
            if not SESSION_ID.match(key):
                raise _Lost(
                    "an unexpected answer from the platform: a 200 that is not a session id "
                    f"({_kind_of_text(key)})"
                )
            return key

        try:
            outcomes = await _gather(one(replica) for replica in replicas)
        except asyncio.CancelledError:
            if in_flight:
                lost = {r: names[r] for r in sorted(in_flight)}
                log.warning(
                    "create interrupted while sending %s: the outcome is unknown; looking "
                    "for them by name in the background",
                    ", ".join(f"replica {r}/{total} ({n!r})" for r, n in lost.items()),
                )
                get_runner().spawn(
                    self._after_interrupt(request.kind, lost, total, began),
                    name="canfar-widgets:reconcile-create",
                )
            raise
        created = {o for o in outcomes if isinstance(o, str)}
        self._shared.remember(created)
        # Widgets in this process poll fast for a while, so a short job is seen running.
        launches.announce([o for o in outcomes if isinstance(o, str)], platform=self.url)
        lost = {
            replica: names[replica]
            for replica, outcome in zip(replicas, outcomes, strict=True)
            if isinstance(outcome, _Lost)
        }
        found = await self._reconcile(request.kind, lost, began, created) if lost else {}
        results: list[LaunchOutcome] = []
        for replica, outcome in zip(replicas, outcomes, strict=True):
            name = names[replica]
            if isinstance(outcome, _Lost):
                if replica in found:
                    log.info(
                        "create: the platform's answer for replica %d/%d was lost (%s); "
                        "found session %s by its name %r",
                        replica,
                        total,
                        outcome.reason,
                        found[replica],
                        name,
                    )
                    results.append(
                        LaunchOutcome(replica, found[replica], reconciled=True, name=name)
                    )
                else:
                    error = AnswerLost(replica, total, name, outcome.reason)
                    error.__cause__ = outcome.__cause__
                    results.append(LaunchOutcome(replica, None, error, unknown=True, name=name))
            elif isinstance(outcome, BaseException):
                results.append(LaunchOutcome(replica, None, outcome, name=name))
            else:
                results.append(LaunchOutcome(replica, outcome, name=name))
        return results

    async def _sent(
        self,
        form: list[tuple[str, str]],
        headers: dict[str, str] | None,
        on_send: Callable[[], None],
    ) -> httpx.Response:
        """One create POST; ``_Lost`` when its answer is lost after it may have arrived."""
        try:
            return await self._wire.post("session", form, headers=headers, on_send=on_send)
        except APIError as err:
            if err.status_code in _MAYBE_DONE_STATUSES:
                raise _Lost(f"{type(err).__name__} {err.status_code}") from err
            raise
        except NOT_SENT_ERRORS:
            raise  # retried by the wire already; certainly not created
        except httpx.TransportError as err:  # timeouts, resets, the overall deadline...
            raise _Lost(type(err).__name__) from err
        except UnexpectedAnswer as err:  # a 200 too large to read
            raise _Lost("an unreadable answer") from err

    async def _reconcile(
        self, kind: str, lost: Mapping[int, str], began: float, taken: set[str]
    ) -> dict[int, str]:
        """Look for the sessions of ``lost`` ({replica: name}) by exact name; {replica: id}.

        Lists the sessions of ``kind`` up to ``self.reconcile.looks`` times with backoff;
        what counts as the session asked for is :func:`canfar_widgets.reconcile.match_lost`.
        """
        from canfar_widgets.models import server_kind

        policy: Reconcile = self.reconcile
        found: dict[int, str] = {}
        given_up: set[int] = set()
        for delay in policy.delays():
            if delay:
                await self._wire._sleep(delay)
            try:
                response = await self._wire.get("session", params={"type": server_kind(kind)})
                records = _json_list_of_records(response)
            except httpx.HTTPError as err:
                log.info("create: looking for a lost session failed (%s)", _describe(err))
                continue
            pending = {r: n for r, n in lost.items() if r not in found and r not in given_up}
            known = taken | set(found.values()) | self._shared.created
            earliest = began + clock_offset(response) - policy.margin
            matched, ambiguous = match_lost(records, pending, known, earliest)
            found.update(matched)
            for replica in ambiguous:
                log.warning(
                    "create: several new sessions are named %r; cannot tell which one the "
                    "lost answer was for",
                    lost[replica],
                )
            given_up |= ambiguous
            if len(found) + len(given_up) == len(lost):
                break
        self._shared.remember(found.values())
        return found

    async def _after_interrupt(
        self, kind: str, lost: Mapping[int, str], total: int, began: float
    ) -> None:
        found = await self._reconcile(kind, lost, began, set())
        for replica, name in lost.items():
            if replica in found:
                log.warning(
                    "interrupted create: replica %d/%d was created as session %s (%r)",
                    replica,
                    total,
                    found[replica],
                    name,
                )
            else:
                log.warning(
                    "interrupted create: no session named %r was found for replica %d/%d; "
                    "it may still appear: check fetch() before launching it again",
                    name,
                    replica,
                    total,
                )

    async def _create(
        self, request: CreateRequest, policy: Errors, headers: dict[str, str] | None
    ) -> tuple[list[str], list[str]]:
        """The ids launched, and (``errors="ignore"``) why the others were not."""
        total = int(request.replicas)
        launched = await self._launch(request, range(1, total + 1), total, headers)
        ids = [o.id for o in launched if o.id is not None]
        failed = {o.replica: o.error for o in launched if o.error is not None}
        for error in failed.values():
            if not isinstance(error, httpx.HTTPError):
                raise error  # not a failed request (an authentication problem, a bug)
        if not failed:
            return ids, []
        if policy == "raise":
            raise session_request_error("create", ids, failed)
        problems: list[str] = []
        for replica, error in failed.items():
            log.warning("create failed for replica %d/%d (%s)", replica, total, _describe(error))
            problems.append(f"replica {replica}/{total}: {_why(error)}")
        head = f"create launched {len(ids)} of {total} session{'s' if total != 1 else ''} ({request.name!r})"
        return ids, [head, *problems]

    @_old_id_keywords
    async def destroy(
        self, ids: str | list[str], *, errors: Errors | None = None
    ) -> dict[str, bool]:
        """Delete sessions; ``{id: True}`` for each deleted, ``False`` for each failure.

        ``ids`` may be ids or session records, as in :meth:`info`.

        Example:
            >>> await session.destroy(["q2w8e4r6", "k3x9ab2q"])
            {'q2w8e4r6': True, 'k3x9ab2q': True}
        """
        keys = _ids(ids)
        policy = self._policy(errors)
        if not keys:
            return {}
        return await _reporting(self._each("destroy", keys, policy, self._delete_one))

    async def _delete_one(self, key: str) -> None:
        await self._wire.delete(_session_path(key))

    @_old_id_keywords
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
        return await _reporting(self._each("renew", keys, policy, self._renew_one))

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

        def shape(good: list[tuple[str, None]]) -> dict[str, bool]:
            done = {key for key, _ in good}
            return {key: key in done for key in keys}

        return shape(_settle(operation, keys, outcomes, policy, results=shape))

    async def destroy_with(
        self,
        prefix: str,
        kind: Kind | None = "headless",
        status: Status | Sequence[Status] | Literal["any"] | None = "Completed",
        *,
        errors: Errors | None = None,
    ) -> dict[str, bool]:
        """Delete the sessions of ``kind`` and ``status`` whose name matches ``prefix``.

        ``prefix`` is a literal name prefix unless it holds a regex character
        (``.^$*+?{}[]()|``); then it is a regular expression searched anywhere in the name.
        ``status`` may be a list (``["Completed", "Failed"]``: a finished batch in one call);
        ``status="any"`` means every status, Running included. ``status=None`` is refused:
        it used to mean "any" silently, which deleted running sessions. ``kind=None``
        means every kind. ``kind`` and ``status`` may be given by position (as the skaha
        1.6 documentation writes it) or by keyword (as ``canfar``).

        Example:
            >>> await session.destroy_with("batch-")              # literal prefix
            {'q2w8e4r6': True}
            >>> await session.destroy_with("scan-", "headless", ["Completed", "Failed"])
            >>> await session.destroy_with(r"-\\d+$", status="Failed")   # regex
        """
        pattern = _name_pattern(prefix)
        words: list[Any] = _prune_statuses(status) or [None]  # None: every status
        for word in words:
            _fetch_params(kind, word, None)  # reject bad literals before any request
        policy = self._policy(errors)
        listings = await asyncio.gather(*(self.fetch(kind=kind, status=word) for word in words))
        matching = list(
            dict.fromkeys(
                str(item["id"])
                for sessions in listings
                for item in sessions
                if isinstance(item.get("name"), str)
                and pattern.search(item["name"])
                and "id" in item
            )
        )
        return await self.destroy(matching, errors=policy)

    @_old_id_keywords
    async def connect(self, ids: str | list[str]) -> None:
        """Open Running sessions: clickable links in Jupyter, browser tabs elsewhere.

        A session that is not Running yet gets a warning instead. ``ids`` may be the
        records ``fetch()`` returned, as the seed documentation writes it.

        Example:
            >>> await session.connect("k3x9ab2q")
            >>> await session.connect(await session.fetch(kind="notebook", status="Running"))
        """
        records = await self.info(ids)
        _present(functools.partial(_open_sessions, records))

    @_old_id_keywords
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
        final: dict[str, dict[str, Any]] = {}  # filled by _wait; read if the wait is interrupted
        word, going = ("finished", "running") if until == "finished" else ("running", "starting")
        total = len(set(keys))

        def interrupted() -> str:
            return f"Interrupted: {len(final)} of {total} {word}; the sessions keep {going}."

        with explain_interrupt(interrupted):
            return await get_runner().arun(
                self._wait(keys, until, timeout, interval, policy, final)
            )

    async def _wait(
        self,
        keys: list[str],
        until: str,
        timeout: float,
        interval: float,
        policy: Errors,
        final: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
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
                raise TimeoutError(f"sessions not {word} after {timeout:g} s: {', '.join(pending)}")
            await asyncio.sleep(min(interval, left))

    # -- platform ------------------------------------------------------------------------------

    async def images(self, kind: Kind | None = None) -> list[Image]:
        """Images you may launch (``GET image``), optionally only those labelled ``kind``.

        Example:
            >>> images = await session.images("notebook")
            >>> [image.id for image in images]
            ['images.canfar.net/skaha/astroml:latest', ...]
        """
        from pydantic import ValidationError

        from canfar_widgets.models import Image

        params = _fetch_params(kind, None, None) or None
        response = await self._wire.get("image", params=params)
        items = _json(response)
        if not isinstance(items, list):
            raise _unexpected(response, f"expected a JSON list, got {_kind_of(items)}")
        try:
            return [Image.model_validate(item) for item in items]
        except ValidationError as err:
            raise _unexpected(
                response, f"an image entry is malformed ({err.error_count()} problem(s))"
            ) from None

    async def context(self) -> Context:
        """Resource options of the platform (cores, RAM, GPU choices and defaults).

        Example:
            >>> context = await session.context()
            >>> context.cores.options
            [1, 2, 4, 8, 16]
        """
        from pydantic import ValidationError

        from canfar_widgets.models import Context

        response = await self._wire.get("context")
        data = _json(response)
        if not isinstance(data, dict):
            raise _unexpected(response, f"expected a JSON object, got {_kind_of(data)}")
        try:
            return Context.model_validate(data)
        except ValidationError as err:
            raise _unexpected(
                response, f"the context is malformed ({err.error_count()} problem(s))"
            ) from None

    async def repositories(self) -> list[str]:
        """Registry hosts images may come from (``GET repository``).

        Example:
            >>> await session.repositories()
            ['images.canfar.net']
        """
        response = await self._wire.get("repository")
        data = _json(response)
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise _unexpected(response, f"expected a JSON list of host names, got {_kind_of(data)}")
        return list(data)

    async def keep_alive(
        self,
        ids: str | list[str],
        *,
        until: datetime | float,
        margin: float = 3600.0,
        check_every: float = 300.0,
    ) -> KeepAlive:
        """Keep interactive sessions alive until ``until``: renew each when less than an hour is left.

        A background task on the runner reads the sessions' expiry (every ``check_every``
        seconds, and just before each is due) and renews one when less than ``margin``
        seconds are left and its expiry is before ``until``; it ends by itself at ``until``
        and at once on ``.stop()``. Headless jobs, finished and unknown sessions are not
        renewed (see the handle's ``skipped``). Returns the running
        :class:`~canfar_widgets.keep_alive.KeepAlive` (``.renewals``, ``.stop()``, ``.wait()``).

        Example:
            >>> keeper = await session.keep_alive("k3x9ab2q", until=datetime(2026, 12, 24, 18, 0))
            >>> keeper.stop()
        """
        from canfar_widgets.keep_alive import KeepAlive
        from canfar_widgets.models import SessionRecord

        async def info(keys: list[str]) -> list[SessionRecord]:
            found = await self.info(keys, errors="ignore")  # a gone id is left out
            return [SessionRecord.model_validate(item) for item in found]

        async def renew(keys: list[str]) -> dict[str, bool]:
            return await self.renew(keys, errors="ignore")

        return KeepAlive(
            ids, until, info=info, renew=renew, margin=margin, check_every=check_every
        ).start()

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

    target: Callable[..., Coroutine[Any, Any, R]] = method
    renames = getattr(method, "_renames_ids", False)
    if renames:
        target = method.__wrapped__  # type: ignore[attr-defined]

    @functools.wraps(method)
    def blocking(self: Session, *args: P.args, **kwargs: P.kwargs) -> R:
        if renames:  # in the caller's thread, so the warning points at the caller's line
            kwargs = _renamed_ids(method.__name__, args, kwargs, stacklevel=3)  # type: ignore[assignment]
        result, shown = get_runner().run(_deferring(target(self._async, *args, **kwargs)))
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
    launch_replicas = _sync(AsyncSession.launch_replicas)
    destroy = _sync(AsyncSession.destroy)
    renew = _sync(AsyncSession.renew)
    destroy_with = _sync(AsyncSession.destroy_with)
    connect = _sync(AsyncSession.connect)
    wait = _sync(AsyncSession.wait)
    images = _sync(AsyncSession.images)
    context = _sync(AsyncSession.context)
    repositories = _sync(AsyncSession.repositories)
    keep_alive = _sync(AsyncSession.keep_alive)


# -- policy helpers ---------------------------------------------------------------------------------


class _Lost(httpx.TransportError):
    """A create POST whose answer was lost after it may have been received (internal)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_policy(value: Any) -> Errors:
    if value not in _POLICIES:
        raise ValueError(f"errors must be 'ignore' or 'raise', not {value!r}")
    return "raise" if value == "raise" else "ignore"


def _ids(ids: SessionRef | Iterable[SessionRef]) -> list[str]:
    """One session or many -> a list of ids, order and duplicates kept (as ``canfar``).

    A session may be given by its id or by its record (a dict with an ``"id"``, as
    ``fetch()`` returns, or a ``SessionRecord``). Checked before any request: an empty id
    would address ``session/``, which a real server answers with *some* session, and a
    ``/`` would reach another endpoint.
    """
    if isinstance(ids, str) or _is_record(ids):
        items: list[Any] = [ids]
    elif isinstance(ids, Iterable):
        items = list(ids)
    else:
        raise TypeError(
            f"ids must be a session id, a session record or a list of them, not {type(ids).__name__}"
        )
    keys = [_id_of(item) for item in items]
    for key in keys:
        if not key or any(char in key for char in "/?#"):
            raise ValueError(f"invalid session id: {key!r}")
    return keys


def _is_record(item: Any) -> bool:
    return isinstance(item, Mapping) or (
        not isinstance(item, (str, bytes)) and hasattr(item, "id") and hasattr(item, "model_dump")
    )


def _id_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        if "id" not in item:
            raise ValueError("a session record without an 'id' cannot name a session")
        value = item["id"]
    elif _is_record(item):
        value = item.id
    else:
        value = item
    if value is None or isinstance(value, (bool, dict, list)):
        raise ValueError(f"invalid session id: {value!r}")
    return str(value)


def _session_path(key: str) -> str:
    return f"session/{key}"


_VIEWS = ("all", "interactive")


def _fetch_params(kind: Any, status: Any, view: Any) -> dict[str, str]:
    """The query of a listing; a bad value raises pydantic's ``ValidationError`` (as canfar)."""
    from canfar_widgets.models import KINDS, STATUSES, server_kind, server_status

    params: dict[str, str] = {}
    problems: list[tuple[str, Any, tuple[str, ...]]] = []
    for field, value, allowed, convert in (
        ("kind", kind, KINDS, server_kind),
        ("status", status, STATUSES, server_status),
        ("view", view, _VIEWS, None),
    ):
        if value is None:
            continue
        if convert is not None:
            try:
                params["type" if field == "kind" else field] = convert(value)
            except ValueError:
                problems.append((field, value, allowed))
        elif isinstance(value, str) and value.strip().lower() in allowed:
            params[field] = value.strip().lower()
        else:
            problems.append((field, value, allowed))
    if problems:
        from pydantic_core import ValidationError

        raise ValidationError.from_exception_data(
            "fetch",
            [
                {
                    "type": "literal_error",
                    "loc": (field,),
                    "input": value,
                    "ctx": {"expected": ", ".join(repr(word) for word in allowed)},
                }
                for field, value, allowed in problems
            ],
        )
    return params


def _prune_statuses(status: Any) -> list[str] | None:
    """destroy_with()'s ``status``: a list of words, or None for "any status"."""
    if status is None:
        raise ValueError(
            "destroy_with(status=None) would delete sessions of every status, Running ones "
            "included; pass status='any' if that is what you mean, or a status such as "
            "'Completed' (the default) or a list such as ['Completed', 'Failed']"
        )
    if isinstance(status, str):
        return None if status.strip().lower() == "any" else [status]
    words = list(status) if isinstance(status, Iterable) else [status]
    if not words:
        raise ValueError("destroy_with(status=[]) matches nothing; give at least one status")
    if any(isinstance(word, str) and word.strip().lower() == "any" for word in words):
        raise ValueError("status='any' stands alone, not in a list")
    return words


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
        kind=kind,  # type: ignore[arg-type]  # validated by the model
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
    keys: Sequence[Any],
    outcomes: Sequence[R | BaseException],
    policy: Errors,
    *,
    results: Callable[[list[tuple[Any, R]]], Any] = list,
) -> list[tuple[Any, R]]:
    """Apply the failure policy to per-item outcomes; returns the successes in order.

    Only HTTP failures are per-item; anything else (an authentication failure, a bug) is
    the caller's problem and raises whatever the policy. ``results`` shapes the successes
    into what the method returns, for ``SessionRequestError.results``.
    """
    good: list[tuple[Any, R]] = []
    failed: list[tuple[Any, httpx.HTTPError]] = []
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, httpx.HTTPError):
            failed.append((key, outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            good.append((key, outcome))
    if failed and policy == "raise":
        errors: dict[Any, BaseException] = {}
        for key, err in failed:
            errors.setdefault(key, err)  # a repeated id: its first failure
        error = session_request_error(operation, results(good), errors)
        if len(failed) > 1:
            others = ", ".join(f"{key} ({_describe(err)})" for key, err in failed[1:])
            add_note(error, f"{operation} also failed for: {others}")
        raise error
    for key, err in failed:
        log.info("%s failed for %s (%s)", operation, key, _describe(err))
    left_out = _left_out.get()
    if failed and left_out is not None:
        left_out.append(
            f"{operation} left out {_sessions(len(failed))}: "
            + ", ".join(
                f"{key} ({'not found' if isinstance(err, NotFound) else _describe(err)})"
                for key, err in failed
            )
        )
    return good


# What ``errors="ignore"`` left out during one public call, gathered on the runner and
# warned about in the caller's thread (see ``_reporting``); None outside such a call.
_left_out: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "canfar_widgets_left_out", default=None
)


async def _reporting(coro: Coroutine[Any, Any, R]) -> R:
    """Run ``coro`` on the runner, then warn (``SessionWarning``) about what it left out.

    The warning is issued in the caller's thread, so it names the user's line and a notebook
    shows it under the right cell, once per call site. A call made on the runner thread
    itself (a widget's poll) only logs at INFO: the widget says what is missing.
    """

    async def gathering() -> tuple[R, list[str]]:
        found: list[str] = []
        token = _left_out.set(found)
        try:
            return await coro, found
        finally:
            _left_out.reset(token)

    result, left_out = await get_runner().arun(gathering())
    # Session's sync facade defers it to its caller's thread (_deferred is set there).
    if left_out and (_deferred.get() is not None or not get_runner().in_runner_thread()):
        _present(functools.partial(_warn_left_out, left_out))
    return result


def _warn_left_out(lines: list[str]) -> None:
    from canfar_widgets.stacklevel import caller_stacklevel  # it imports pydantic: on first use

    for line in lines:
        warnings.warn(line, SessionWarning, stacklevel=caller_stacklevel())


def _sessions(count: int) -> str:
    return f"{count} session{'s' if count != 1 else ''}"


def _describe(err: BaseException) -> str:
    """Error class and status only: never a message that could quote a request."""
    if isinstance(err, APIError):
        return f"{type(err).__name__} {err.status_code}"
    return type(err).__name__


def _why(error: BaseException) -> str:
    """Why a replica was not launched, for the user: class, status, and a 4xx's short text.

    A 4xx text is the server's validation message (safe and useful); a 5xx text may quote
    the job's manifest (environment values), so only its status is given.
    """
    if isinstance(error, AnswerLost):
        return (
            f"outcome unknown: the platform's answer was lost ({error.reason}) and no session "
            f"named {error.name!r} was found; check fetch() before launching it again"
        )
    if isinstance(error, APIError) and 400 <= error.status_code < 500 and error.message:
        text = " ".join(error.message.split())
        return f"{type(error).__name__} {error.status_code}: {text[:200]}"
    return _describe(error)


def _warn_launch(problems: Sequence[str]) -> None:
    head, *rest = problems
    warnings.warn(f"{head}: " + "; ".join(rest), LaunchWarning, stacklevel=4)


def _json(response: httpx.Response) -> Any:
    """The JSON of a success answer, or ``UnexpectedAnswer`` (never TypeError/RecursionError)."""
    try:
        return json.loads(response.content)
    except RecursionError:
        raise _unexpected(response, "the JSON is nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError):
        raise _unexpected(
            response, f"it is not JSON ({_kind_of_text(response.content[:200])})"
        ) from None


def _json_list_of_records(response: httpx.Response) -> list[dict[str, Any]]:
    data = _json(response)
    if not isinstance(data, list):
        raise _unexpected(response, f"expected a JSON list of sessions, got {_kind_of(data)}")
    odd = next((item for item in data if not isinstance(item, dict)), None)
    if odd is not None:
        raise _unexpected(response, f"a session in the list is {_kind_of(odd)}, not an object")
    return data


def _unexpected(response: httpx.Response, problem: str) -> UnexpectedAnswer:
    request = response.request
    return UnexpectedAnswer(f"{request.method} {request.url.path}", problem)


def _kind_of(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _kind_of_text(text: str | bytes) -> str:
    """What an unexpected body looks like, never quoting it (it may hold anything)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    stripped = text.strip()
    if not stripped:
        return "an empty body"
    if stripped.lower().startswith(("<!doctype", "<html", "<?xml", "<")):
        return "an HTML/XML page"
    if stripped[:1] in "{[":
        return "JSON"
    return f"{len(stripped)} characters of text"


def _form_name(form: Sequence[tuple[str, str]]) -> str:
    return next(value for key, value in form if key == "name")


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
                warnings.warn(f"Session {key} is {status}; wait until it is Running", stacklevel=2)
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
