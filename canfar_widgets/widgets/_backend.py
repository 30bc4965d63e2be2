"""One async facade over any session object, running on the runner loop.

Widgets accept ``session=`` as this package's ``Session`` or ``AsyncSession``, or the
official ``canfar`` ``Session`` / ``AsyncSession``. They differ in sync-vs-async and in
return types (dicts vs models), so widgets never call a session directly: they ask
``Backend.of(session)`` and ``await`` its methods, which always

- run on the runner loop (an ``httpx.AsyncClient`` belongs to one loop; the kernel loop
  must never wait on the network);
- return this package's models (``SessionRecord``, ``Stats``, ``Context``, ``Image``,
  ``Event``), parsed tolerantly;
- leave sync sessions' blocking calls to a worker thread (``asyncio.to_thread``), so
  the runner loop keeps serving other widgets meanwhile.

There is one ``Backend`` per session object (while any widget uses it), and so one
``SessionFeed``: two tables on the same session poll the platform once.

Example:
    >>> backend = Backend.of(session)           # session=None builds Session() from env/config
    >>> records = get_runner().run(backend.fetch(kind="headless"))
    >>> backend.feed.subscribe(lambda rows, err: print(len(rows or []), err))
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from canfar_widgets.runner import get_runner

if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.models import (
        ContainerRegistry,
        Context,
        CreateRequest,
        Event,
        Image,
        SessionRecord,
        Stats,
    )
    from canfar_widgets.widgets.feed import SessionFeed

__all__ = ["Backend"]

log = logging.getLogger("canfar_widgets.widgets")

# Attribute names under which a sync facade may keep the AsyncSession it wraps. Using the
# async one directly saves a worker thread per call (the sync facade would block in one).
_ASYNC_ATTRS = ("asynchronous", "_async", "_asession", "_async_session", "async_session", "_inner")

# Shipped fallbacks when neither the session nor the server gives form options.
_DEFAULT_CONTEXT = {
    "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 16, "defaultHeadless": 1,
              "options": [1, 2, 4, 8, 16]},
    "memoryGB": {"default": 8, "defaultRequest": 4, "defaultLimit": 32, "defaultHeadless": 4,
                 "options": [1, 2, 4, 8, 16, 32, 64]},
    "gpus": {"options": [0, 1, 2, 4]},
}


class Backend:
    """Any session object -> async calls that run on the runner loop.

    Get one with :meth:`of` rather than the constructor, so widgets sharing a session
    share its backend and its :attr:`feed`.

    Example:
        >>> b = Backend.of(my_session)
        >>> b is Backend.of(my_session)
        True
        >>> ids = await b.create(CreateRequest(name="job", image="skaha/terminal:1.1.2"))
    """

    # id(session) -> weakref to its Backend. Keyed by id because pydantic sessions are not
    # hashable; safe because a live Backend keeps its session alive (so the id is not reused)
    # and a dead Backend's entry is dropped by the weakref callback.
    _cache: ClassVar[dict[int, weakref.ref[Backend]]] = {}
    _cache_lock = threading.Lock()
    # The Backend of the implicit Session() built for session=None, shared by every widget
    # made without a session (kept for the process: it is the user's default connection).
    _default: ClassVar[Backend | None] = None

    def __init__(self, session: Any) -> None:
        self.session = session
        self._feed: SessionFeed | None = None
        self._feed_lock = threading.Lock()
        self._official = type(session).__module__.split(".")[0] == "canfar"
        self._secrets: set[str] = set()
        self._remember_session_secrets()
        self._record_cache: dict[Any, tuple[dict[str, Any], SessionRecord]] = {}
        self._records_lock = threading.Lock()

    @classmethod
    def of(cls, session: Any = None) -> Backend:
        """The Backend for ``session`` (one per session object); ``None`` -> ``Session()``.

        Passing a ``Backend`` returns it unchanged.

        Raises:
            canfar_widgets.errors.ConfigurationError: ``session=None`` and no server or
                credentials are configured (env ``CANFAR_URL``/``CANFAR_TOKEN`` or
                ``~/.canfar/config.yaml``).
        """
        if isinstance(session, Backend):
            return session
        if session is None:
            with cls._cache_lock:
                if cls._default is None:
                    from canfar_widgets.sessions import Session

                    cls._default = cls._make(Session())
                return cls._default
        with cls._cache_lock:
            ref = cls._cache.get(id(session))
            backend = ref() if ref is not None else None
            if backend is None or backend.session is not session:
                backend = cls._make(session)
            return backend

    @classmethod
    def _make(cls, session: Any) -> Backend:
        # Caller holds _cache_lock.
        backend = cls(session)
        key = id(session)

        def _forget(ref: weakref.ref[Backend], key: int = key) -> None:
            if cls._cache.get(key) is ref:
                cls._cache.pop(key, None)

        cls._cache[key] = weakref.ref(backend, _forget)
        return backend

    @property
    def feed(self) -> SessionFeed:
        """The one shared poller of ``fetch()`` for this session object."""
        feed = self._feed
        if feed is None:
            with self._feed_lock:
                if self._feed is None:
                    from canfar_widgets.widgets.feed import SessionFeed

                    self._feed = SessionFeed(self)
                feed = self._feed
        return feed

    def __repr__(self) -> str:
        return f"<Backend for {type(self.session).__module__}.{type(self.session).__name__}>"

    # -- secrets ------------------------------------------------------------------------------

    def _remember_session_secrets(self) -> None:
        """Collect the session's token (and registry secret) so :meth:`scrub` can hide them."""
        for candidate in _secret_candidates(self.session):
            self._add_secret(candidate)

    def _add_secret(self, value: Any) -> None:
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value) >= 4:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with the token and any registry secret replaced by ``***``.

        Example:
            >>> Backend.of(session_with_token_abc123).scrub("Bearer abc123 rejected")
            'Bearer *** rejected'
        """
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    # -- calls ------------------------------------------------------------------------------------

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``session.<name>`` on the runner loop, awaiting or threading as needed."""
        return await get_runner().arun(self._invoke(name, args, kwargs))

    async def _invoke(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        target = self._async_target(name)
        if target is not None:
            return await target(*args, **kwargs)
        method = getattr(self.session, name, None)
        if method is None:
            raise AttributeError(f"{type(self.session).__name__} has no method {name}()")
        if inspect.iscoroutinefunction(method):
            return await method(*args, **kwargs)
        # A sync session blocks: keep it off the runner loop so other widgets stay live.
        result = await asyncio.to_thread(method, *args, **kwargs)
        if inspect.isawaitable(result):  # a sync-looking wrapper that returned a coroutine
            result = await result
        return result

    def _async_target(self, name: str) -> Callable[..., Any] | None:
        """The coroutine method of the AsyncSession a sync facade wraps, if it exposes one."""
        if inspect.iscoroutinefunction(getattr(self.session, name, None)):
            return None  # already async
        for attr in _ASYNC_ATTRS:
            inner = getattr(self.session, attr, None)
            if inner is None or inner is self.session or not hasattr(inner, "fetch"):
                continue
            method = getattr(inner, name, None)
            if inspect.iscoroutinefunction(method):
                return method
        return None

    def _accepts(self, name: str, keyword: str) -> bool:
        target = self._async_target(name) or getattr(self.session, name, None)
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return False
        return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    async def fetch(self, kind: str | None = None, status: str | None = None) -> list[SessionRecord]:
        """All the user's sessions (optionally filtered server-side) as ``SessionRecord``s."""
        raw = await self._call("fetch", kind=kind, status=status)
        return self._cached_records(raw)

    def _cached_records(self, raw: Any) -> list[SessionRecord]:
        """Parse records, reusing last poll's object for every unchanged server dict.

        Why: parsing 1,000 records costs ~20 ms, comparing dicts ~0.5 ms; and an unchanged
        record keeps its identity, so a table diffs a quiet poll with ``is`` checks.
        """
        from canfar_widgets.models import SessionRecord

        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
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
        raw = await self._call("info", _ids(ids))
        return _records(raw)

    async def logs(self, ids: str | Iterable[str]) -> dict[str, str]:
        """Container logs by session id."""
        raw = await self._call("logs", _ids(ids))
        return {str(k): str(v) for k, v in (raw or {}).items()}

    async def events(self, ids: str | Iterable[str]) -> dict[str, list[Event]]:
        """Kubernetes events by session id, parsed from the server's text table."""
        from canfar_widgets.models import parse_events

        raw = await self._call("events", _ids(ids))
        texts: dict[str, Any] = {}
        if isinstance(raw, dict):
            texts = dict(raw)
        else:  # canfar's shape: [{id: text}, ...]
            for item in raw or []:
                if isinstance(item, dict):
                    texts.update(item)
        out: dict[str, list[Event]] = {}
        for key, value in texts.items():
            if isinstance(value, str):
                out[str(key)] = list(parse_events(value))
            else:
                out[str(key)] = list(value or [])
        return out

    async def stats(self) -> Stats:
        """Platform load (``view=stats``)."""
        from canfar_widgets.models import Stats

        raw = await self._call("stats")
        return raw if isinstance(raw, Stats) else Stats.model_validate(raw or {})

    async def context(self) -> Context:
        """Form options (cores/RAM/GPU choices); falls back to a GET or shipped defaults."""
        from canfar_widgets.models import Context

        if hasattr(self.session, "context") and callable(self.session.context):
            raw = await self._call("context")
        else:
            raw = await self._get_json("context")
            if raw is None:
                raw = _DEFAULT_CONTEXT
        return raw if isinstance(raw, Context) else Context.model_validate(raw)

    async def images(self, kind: str | None = None) -> list[Image]:
        """Images the user may launch, optionally for one session kind."""
        from canfar_widgets.models import Image

        if hasattr(self.session, "images") and callable(self.session.images):
            raw = await self._call("images", kind)
        else:
            raw = await self._get_json("image", {"type": kind} if kind else None) or []
        return [item if isinstance(item, Image) else Image.model_validate(item) for item in raw]

    async def create(
        self, request: CreateRequest, registry: ContainerRegistry | None = None
    ) -> list[str]:
        """Launch the session(s) described by ``request``; returns the new ids.

        Errors raise (``errors="raise"``) and a create is never retried: a retried POST
        could launch twice. ``registry`` credentials are used for this call only and are
        never stored on the session.
        """
        if registry is not None:
            self._add_secret(getattr(registry, "secret", None))
            self._add_secret(_registry_header(registry))
        try:
            return await get_runner().arun(self._create(request, registry))
        finally:
            self._platform_changed()

    async def _create(self, request: CreateRequest, registry: ContainerRegistry | None) -> list[str]:
        if self._official:
            return await self._create_official(request, registry)
        kwargs = _create_kwargs(request)
        if self._accepts("create", "errors"):
            kwargs["errors"] = "raise"
        if registry is not None:
            if not self._accepts("create", "registry"):
                raise TypeError(
                    f"{type(self.session).__name__}.create() does not take registry credentials"
                )
            kwargs["registry"] = registry
        result = await self._invoke("create", (), kwargs)
        return [str(i) for i in (result or [])]

    async def _create_official(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> list[str]:
        # canfar reads registry credentials from its configuration when the client is built,
        # so a one-off registry needs a one-off client with the same settings.
        session = self.session if registry is None else _official_with_registry(self.session, registry)
        try:
            kwargs = _create_kwargs(request)
            kwargs["errors"] = "raise"
            method = session.create
            if inspect.iscoroutinefunction(method):
                result = await method(**kwargs)
            else:
                result = await asyncio.to_thread(method, **kwargs)
        finally:
            if session is not self.session:
                await _close_quietly(session)
        if not result:
            raise RuntimeError("the platform launched nothing")
        return [str(i) for i in result]

    async def destroy(self, ids: str | Iterable[str]) -> dict[str, bool]:
        """Delete sessions; ``{id: deleted?}``."""
        return await self._act("destroy", ids)

    async def renew(self, ids: str | Iterable[str]) -> dict[str, bool]:
        """Reset sessions' expiry; ``{id: renewed?}``."""
        return await self._act("renew", ids)

    async def _act(self, verb: str, ids: str | Iterable[str]) -> dict[str, bool]:
        """``session.<verb>(ids)`` -> ``{id: done?}``, then tell the widgets watching."""
        try:
            raw = await self._call(verb, _ids(ids))
        finally:
            self._platform_changed()
        return {str(k): bool(v) for k, v in (raw or {}).items()}

    def _platform_changed(self) -> None:
        """After a create/delete/renew, every widget watching this session sees it at once.

        Why here: a LaunchForm and a SessionTable built separately on one session share this
        Backend's feed, so poking the feed keeps them in step without either knowing the other.
        Nothing polls when nobody watches.
        """
        feed = self._feed
        if feed is not None and feed.subscriptions:
            feed.refresh_now()

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``<base>/<path>`` for sessions lacking a method (canfar has no context())."""
        client = getattr(self.session, "asynclient", None) if self._official else None
        try:
            if client is not None:
                response = await client.get(path, params=params)
            else:
                sync_client = getattr(self.session, "client", None)
                if sync_client is None:
                    return None
                response = await asyncio.to_thread(sync_client.get, path, params=params)
            response.raise_for_status()
            return response.json()
        except Exception as exc:  # a missing endpoint just means "use the defaults"
            log.debug("GET %s failed: %s", path, self.scrub(str(exc)))
            return None


# -- helpers ----------------------------------------------------------------------------------


def _ids(ids: str | Iterable[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else [str(i) for i in ids]


def _records(raw: Any) -> list[SessionRecord]:
    from canfar_widgets.models import SessionRecord

    out = []
    for item in raw or []:
        if isinstance(item, SessionRecord):
            out.append(item)
        elif isinstance(item, dict):
            out.append(SessionRecord.model_validate(item))
        elif hasattr(item, "model_dump"):
            out.append(SessionRecord.model_validate(item.model_dump(by_alias=True)))
    return out


def _create_kwargs(request: Any) -> dict[str, Any]:
    """``CreateRequest`` -> keyword arguments of ``create(name, image, cores, ram, kind, ...)``."""
    if isinstance(request, dict):
        data = dict(request)
    else:
        data = request.model_dump(by_alias=False)
        # CreateRequest excludes replicas from dumps (it is not a form field): read it directly.
        data["replicas"] = getattr(request, "replicas", data.get("replicas"))
    if "gpus" in data and "gpu" not in data:
        data["gpu"] = data.pop("gpus")
    if "type" in data and "kind" not in data:
        data["kind"] = data.pop("type")
    keys = ("name", "image", "cores", "ram", "kind", "gpu", "cmd", "args", "env", "replicas")
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def _registry_header(registry: Any) -> str | None:
    user = getattr(registry, "username", None)
    secret = getattr(registry, "secret", None)
    if hasattr(secret, "get_secret_value"):
        secret = secret.get_secret_value()
    if not user or not secret:
        return None
    return base64.b64encode(f"{user}:{secret}".encode()).decode()


def _secret_candidates(session: Any) -> list[Any]:
    """Token-like values reachable from a session object (ours or canfar's)."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(obj: Any, depth: int) -> None:
        if obj is None or depth > 3 or id(obj) in seen:
            return
        seen.add(id(obj))
        for name in ("token", "access_token", "refresh_token", "secret", "_token"):
            value = getattr(obj, name, None)
            if isinstance(value, str) or hasattr(value, "get_secret_value"):
                found.append(value)
        header = _registry_header(obj)
        if header:
            found.append(header)
        for name in ("settings", "_settings", "config", "registry", "auth", "_auth", "credentials",
                     *_ASYNC_ATTRS):
            child = getattr(obj, name, None)
            if child is not None and not isinstance(child, (str, bytes, int, float)):
                visit(child, depth + 1)

    try:
        visit(session, 0)
    except Exception:  # introspection of an odd object must never break a widget
        log.debug("could not inspect session for secrets", exc_info=True)
    return found


def _official_with_registry(session: Any, registry: Any) -> Any:
    """A fresh canfar session like ``session`` but with ``registry`` credentials."""
    from canfar.models.registry import ContainerRegistry as OfficialRegistry

    secret = registry.secret
    if hasattr(secret, "get_secret_value"):
        secret = secret.get_secret_value()
    official = OfficialRegistry(
        url=getattr(registry, "url", None), username=registry.username, secret=secret
    )
    config = session.config.model_copy(update={"registry": official})
    values: dict[str, Any] = {"config": config, "timeout": session.timeout}
    for name in ("token", "certificate", "url", "concurrency"):
        value = getattr(session, name, None)
        if value is not None:
            values[name] = value
    return type(session)(**values)


async def _close_quietly(session: Any) -> None:
    for name in ("_aclose", "aclose", "_close", "close"):
        method = getattr(session, name, None)
        if method is None:
            continue
        try:
            result = method()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.debug("closing a one-off session failed", exc_info=True)
        return
