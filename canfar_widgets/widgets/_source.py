"""Where widgets get their data: one ``SessionSource`` per session object.

Widgets never call a session directly. They ask ``SessionSource.of(session)`` and ``await``
its methods, which always

- run on the runner loop (an ``httpx.AsyncClient`` belongs to one loop; the kernel loop
  must never wait on the network);
- return this package's models (``SessionRecord``, ``Stats``, ``Context``, ``Image``,
  ``Event``), parsed tolerantly, whichever client the session is (the differences live
  in :mod:`canfar_widgets.widgets._adapters`);
- keep secrets out of what widgets show (:meth:`SessionSource.scrub`).

There is one ``SessionSource`` per session object (while any widget uses it), and so one
:class:`SessionFeed`: two tables on the same session poll the platform once.

Example:
    >>> source = SessionSource.of(session)      # session=None builds Session() from env/config
    >>> records = get_runner().run(source.fetch(kind="headless"))
    >>> source.feed.subscribe(lambda rows, err: print(len(rows or []), err))
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, ClassVar, TypeVar

from canfar_widgets import launches
from canfar_widgets.errors import is_auth_error
from canfar_widgets.models import (
    ContainerRegistry,
    Context,
    CreateRequest,
    Event,
    Image,
    Kind,
    SessionRecord,
    Stats,
    Status,
    parse_events,
)
from canfar_widgets.runner import get_runner
from canfar_widgets.sessions import LaunchOutcome, Session
from canfar_widgets.vocabulary import BUSY_STATES
from canfar_widgets.widgets._adapters import (
    NOTHING_LAUNCHED,
    SessionAdapter,
    adapter_for,
    secret_text,
)
from canfar_widgets.widgets.feed import Poller

__all__ = ["SessionFeed", "SessionSource"]

R = TypeVar("R")


class SessionSource:
    """One session object -> async calls that run on the runner loop and return models.

    Get one with :meth:`of` rather than the constructor, so widgets sharing a session
    share its source and its :attr:`feed`.

    Example:
        >>> source = SessionSource.of(my_session)
        >>> source is SessionSource.of(my_session)
        True
        >>> ids = await source.create(CreateRequest(name="job", image="skaha/terminal:1.1.2"))
    """

    # id(session) -> weakref to its SessionSource. Keyed by id because pydantic sessions are
    # not hashable; safe because a live source keeps its session alive (so the id is not
    # reused) and a dead source's entry is dropped by the weakref callback.
    _cache: ClassVar[dict[int, weakref.ref[SessionSource]]] = {}
    _cache_lock = threading.Lock()
    # The source of the implicit Session() built for session=None, shared by every widget
    # made without a session (kept for the process: it is the user's default connection).
    _default: ClassVar[SessionSource | None] = None

    def __init__(self, session: Any) -> None:
        self.session = session
        self.adapter: SessionAdapter = adapter_for(session)
        self._feed: SessionFeed | None = None
        self._feed_lock = threading.Lock()
        self._secrets: set[str] = set()  # registry secrets of past launches
        self._record_cache: dict[Any, tuple[dict[str, Any], SessionRecord]] = {}
        self._records_lock = threading.Lock()
        # (kind, status) -> (the last listing's raw body, the records made from it).
        self._last_body: dict[tuple[Any, Any], tuple[bytes, list[SessionRecord]]] = {}
        self.auth_error: BaseException | None = None
        """The last 401/403 any call on this session got; None once a call succeeds."""
        self._auth_listeners: list[Any] = []

    @classmethod
    def of(cls, session: Any = None) -> SessionSource:
        """The source for ``session`` (one per session object); ``None`` -> ``Session()``.

        Passing a ``SessionSource`` returns it unchanged.

        Raises:
            canfar_widgets.errors.ConfigurationError: ``session=None`` and no server or
                credentials are configured (env ``CANFAR_URL``/``CANFAR_TOKEN`` or
                ``~/.canfar/config.yaml``).
        """
        if isinstance(session, SessionSource):
            return session
        if session is None:
            with cls._cache_lock:
                if cls._default is None:
                    cls._default = cls._make(Session())
                return cls._default
        with cls._cache_lock:
            ref = cls._cache.get(id(session))
            source = ref() if ref is not None else None
            if source is None or source.session is not session:
                source = cls._make(session)
            return source

    @classmethod
    def _make(cls, session: Any) -> SessionSource:
        # Caller holds _cache_lock.
        source = cls(session)
        key = id(session)

        def _forget(ref: weakref.ref[SessionSource], key: int = key) -> None:
            if cls._cache.get(key) is ref:
                cls._cache.pop(key, None)

        cls._cache[key] = weakref.ref(source, _forget)
        return source

    @property
    def feed(self) -> SessionFeed:
        """The one shared poller of ``fetch()`` for this session object."""
        feed = self._feed
        if feed is None:
            with self._feed_lock:
                if self._feed is None:
                    self._feed = SessionFeed(self)
                feed = self._feed
        return feed

    def __repr__(self) -> str:
        return f"<SessionSource for {type(self.session).__module__}.{type(self.session).__name__}>"

    # -- secrets ------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with the token and any registry secret replaced by ``***``.

        Example:
            >>> SessionSource.of(session_with_token_abc123).scrub("Bearer abc123 rejected")
            'Bearer *** rejected'
        """
        for secret in sorted({*self._secrets, *self.adapter.secrets()}, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _hide_secrets_of(self, registry: ContainerRegistry | None) -> None:
        """Scrub ``registry``'s secret and header from every later message of this source."""
        if registry is not None:
            self._secrets.update(
                s for s in (secret_text(registry.secret), registry.header_value()) if s
            )

    # -- calls ------------------------------------------------------------------------------------

    # -- login state -------------------------------------------------------------------------

    def on_auth_change(self, listener: Any) -> Any:
        """Call ``listener(error_or_None)`` when the platform starts or stops refusing the login.

        Why: every widget on a session hits the same 401 with an expired token; a
        dashboard shows one banner for them all instead of one alert per widget.
        Returns ``stop()``, which removes the listener (a closed dashboard calls it).
        """
        self._auth_listeners.append(listener)

        def stop() -> None:
            if listener in self._auth_listeners:
                self._auth_listeners.remove(listener)

        return stop

    def _auth_seen(self, error: BaseException | None) -> None:
        was = self.auth_error
        self.auth_error = error
        if (was is None) == (error is None):
            return
        for listener in list(self._auth_listeners):
            with contextlib.suppress(Exception):  # a broken listener must not break the call
                listener(error)

    async def _run(self, call: Coroutine[Any, Any, R]) -> R:
        """Await ``call`` on the runner loop, from whichever loop awaits this."""
        try:
            result = await get_runner().arun(call)
        except Exception as exc:
            if is_auth_error(exc):
                self._auth_seen(exc)
            raise
        if self.auth_error is not None:
            self._auth_seen(None)
        return result

    async def fetch(
        self, kind: Kind | None = None, status: Status | None = None
    ) -> list[SessionRecord]:
        """All the user's sessions (optionally filtered server-side) as ``SessionRecord``s.

        A listing byte for byte like the last one returns the very same list (no JSON
        decode, no comparison, no validation): a quiet poll of 5,000 sessions costs the
        request and one ``bytes`` comparison.
        """
        fetch_body = getattr(self.adapter, "fetch_body", None)
        if fetch_body is None:
            raw = await self._run(self.adapter.fetch(kind, status))
            return self._cached_records(raw)
        body, decode = await self._run(fetch_body(kind, status))
        key = (kind, status)
        last = self._last_body.get(key)
        if last is not None and last[0] == body:
            return last[1]
        records = self._cached_records(decode())
        self._last_body = {key: (body, records)}  # one listing kept: the one polled
        return records

    def _cached_records(self, raw: list[Any]) -> list[SessionRecord]:
        """Parse records, reusing last poll's object for every unchanged server dict.

        Why: parsing 1,000 records costs ~20 ms, comparing dicts ~0.5 ms; and an unchanged
        record keeps its identity, so a table diffs a quiet poll with ``is`` checks.
        """
        if not all(isinstance(item, dict) for item in raw):
            return _records(raw)
        with self._records_lock:
            previous = self._record_cache
            fresh: dict[Any, tuple[dict[str, Any], SessionRecord]] = {}
            out = []
            for item in raw:
                key = item.get("id")
                hit = previous.get(key)
                if hit is not None and hit[0] == item:
                    record = hit[1]
                else:
                    record = SessionRecord.model_validate(item)
                if key is not None:
                    fresh[key] = (item, record)
                out.append(record)
            self._record_cache = fresh
        return out

    async def info(self, ids: str | Iterable[str]) -> list[SessionRecord]:
        """Details of sessions ``ids`` (those the server knows; use each record's ``id``)."""
        return _records(await self._run(self.adapter.info(_ids(ids))))

    async def logs(self, ids: str | Iterable[str]) -> dict[str, str]:
        """Container logs by session id."""
        return await self._run(self.adapter.logs(_ids(ids)))

    async def events(self, ids: str | Iterable[str]) -> dict[str, list[Event]]:
        """Kubernetes events by session id, parsed from the server's text table."""
        texts = await self._run(self.adapter.events(_ids(ids)))
        out: dict[str, list[Event]] = {}
        for key, value in texts.items():
            out[str(key)] = (
                list(parse_events(value)) if isinstance(value, str) else list(value or [])
            )
        return out

    async def stats(self) -> Stats:
        """Platform load (``view=stats``)."""
        raw = await self._run(self.adapter.stats())
        return raw if isinstance(raw, Stats) else Stats.model_validate(raw or {})

    async def context(self) -> Context:
        """Form options (cores/RAM/GPU choices); falls back to a GET or shipped defaults."""
        raw = await self._run(self.adapter.context())
        return raw if isinstance(raw, Context) else Context.model_validate(raw)

    async def images(self, kind: Kind | None = None) -> list[Image]:
        """Images the user may launch, optionally for one session kind."""
        raw = await self._run(self.adapter.images(kind))
        return [item if isinstance(item, Image) else Image.model_validate(item) for item in raw]

    async def create(
        self, request: CreateRequest, registry: ContainerRegistry | None = None
    ) -> list[str]:
        """Launch the session(s) described by ``request``; returns the new ids.

        Errors raise (``errors="raise"``) and a create is never retried: a retried POST
        could launch twice. ``registry`` credentials are used for this call only and are
        never stored on the session.
        """
        self._hide_secrets_of(registry)
        try:
            ids = await self._run(self.adapter.create(request, registry))
        finally:
            self._platform_changed()
        if not ids:
            raise RuntimeError(NOTHING_LAUNCHED)
        return [str(i) for i in ids]

    async def launch_outcomes(
        self, request: CreateRequest, registry: ContainerRegistry | None = None
    ) -> list[LaunchOutcome]:
        """Launch ``request`` and say what became of each replica.

        Why: a launch form tells "launched", "the answer was lost but the session was found
        by name" and "outcome unknown: look before launching again" apart. This package's
        sessions report each replica (``AsyncSession.launch_replicas``: never raises per
        replica). Another client only gives ids or raises: its adapter numbers the ids in
        order and raises its failure, as :meth:`create` does. ``registry`` credentials are
        hidden from this source's messages, as in :meth:`create`.

        Example:
            >>> outcomes = await source.launch_outcomes(CreateRequest(name="job", image=image))
            >>> [(o.id, o.reconciled, o.unknown) for o in outcomes]
            [('k3x9ab2q', False, False)]
        """
        self._hide_secrets_of(registry)
        try:
            return await self._run(self.adapter.launch_replicas(request, registry))
        finally:
            self._platform_changed()

    async def destroy(self, ids: str | Iterable[str]) -> dict[str, bool]:
        """Delete sessions; ``{id: deleted?}``."""
        return await self._act(self.adapter.destroy(_ids(ids)))

    async def renew(self, ids: str | Iterable[str]) -> dict[str, bool]:
        """Reset sessions' expiry; ``{id: renewed?}``."""
        return await self._act(self.adapter.renew(_ids(ids)))

    async def _act(self, call: Coroutine[Any, Any, dict[str, bool]]) -> dict[str, bool]:
        """Run a delete/renew -> ``{id: done?}``, then tell the widgets watching."""
        try:
            raw = await self._run(call)
        finally:
            self._platform_changed()
        return {str(k): bool(v) for k, v in raw.items()}

    def _platform_changed(self) -> None:
        """After a create/delete/renew, every widget watching this session sees it at once.

        Why here: a LaunchForm and a SessionTable built separately on one session share this
        source's feed, so poking the feed keeps them in step without either knowing the other.
        Nothing polls when nobody watches.
        """
        feed = self._feed
        if feed is not None and feed.subscriptions:
            feed.refresh_now()


FAST_AFTER_LAUNCH = 60.0
"""Seconds of fast polling after a launch: a short job is seen Pending, Running and done."""
IDLE_SECONDS = 60.0
"""The session list's interval once nothing has changed for a few polls."""


class SessionFeed(Poller["list[SessionRecord]"]):
    """``fetch()`` of all the user's sessions, shared by every widget on one session object.

    Intervals: fast (2 s) while any session is Pending or Terminating and for
    :data:`FAST_AFTER_LAUNCH` seconds after any launch in this process (from a widget or
    from ``Session.create``/``launch_replicas`` in a cell: :mod:`canfar_widgets.launches`),
    fast for a while (then slow) while a headless job runs, slow (15 s) when all is
    stable, and idle (60 s) after a few polls that brought nothing new; any action, a
    view coming into view or the window's focus makes it fast again at once.
    Get it as ``SessionSource.of(session).feed``.
    """

    def __init__(
        self,
        source: SessionSource,
        *,
        fast: float = 2.0,
        slow: float = 15.0,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self.source = source
        super().__init__(
            source.fetch,
            fast=fast,
            slow=slow,
            idle=idle,
            is_busy=_any_busy,
            is_lively=_any_job_running,
            name="sessions",
        )
        # Only launches on this feed's platform (or on one not named) hurry it.
        self._stop_listening = launches.on_launch(self._launched, platform=source.adapter.platform)

    def _launched(self, ids: list[str]) -> None:
        if self.subscriptions:  # nobody watching: nothing to show, nothing to poll
            self.hurry(FAST_AFTER_LAUNCH)


def _any_busy(records: list[SessionRecord]) -> bool:
    return any(record.state in BUSY_STATES for record in records)


def _any_job_running(records: list[SessionRecord]) -> bool:
    return any(record.type == "headless" and record.state == "Running" for record in records)


def _ids(ids: str | Iterable[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else [str(i) for i in ids]


def _records(raw: Iterable[Any]) -> list[SessionRecord]:
    out = []
    for item in raw or []:
        if isinstance(item, SessionRecord):
            out.append(item)
        elif isinstance(item, dict):
            out.append(SessionRecord.model_validate(item))
        elif hasattr(item, "model_dump"):
            out.append(SessionRecord.model_validate(item.model_dump(by_alias=True)))
    return out
