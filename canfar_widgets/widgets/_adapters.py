"""Two ways to talk to a session object, behind one small protocol.

Widgets accept ``session=`` as this package's ``Session`` / ``AsyncSession`` or as the
official ``canfar`` ``Session`` / ``AsyncSession``. They differ in sync-vs-async, in return
shapes and in what they offer, so each has its adapter:

- :class:`OwnSessions`: ours. Typed, direct calls to the ``AsyncSession`` (a sync
  ``Session`` hands over the one behind it), so no worker thread and no guessing.
- :class:`CanfarSessions`: the official client. Its workarounds live here and only here:
  sync calls go to a worker thread, events come as ``[{id: text}]``, it has no
  ``context()``/``images()`` (a direct GET, else shipped defaults), it reads registry
  credentials only when a client is built (a one-off client per private launch), and its
  secrets are found by looking at its fields.

Both are called on the runner loop by :class:`~canfar_widgets.widgets._source.SessionSource`,
which turns their raw answers into this package's models.

Example:
    >>> adapter = adapter_for(session)
    >>> type(adapter).__name__
    'OwnSessions'
    >>> await adapter.fetch(kind="headless", status=None)
    [{'id': 'q2w8e4r6', 'status': 'Running', ...}]
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from canfar_widgets import launches
from canfar_widgets.auth import BearerAuth, OIDCAuth, revealed
from canfar_widgets.models import ContainerRegistry, Context, CreateRequest, Image, Kind, Status
from canfar_widgets.sessions import (
    AsyncSession,
    LaunchOutcome,
    Session,
    _fetch_params,
    _json_list_of_records,
)

__all__ = [
    "NOTHING_LAUNCHED",
    "CanfarSessions",
    "OwnSessions",
    "SessionAdapter",
    "adapter_for",
    "secret_text",
]

NOTHING_LAUNCHED = "the platform launched nothing"

log = logging.getLogger("canfar_widgets.widgets")

# Shipped fallbacks when neither the session nor the server gives form options.
DEFAULT_CONTEXT = {
    "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 16, "defaultHeadless": 1,
              "options": [1, 2, 4, 8, 16]},
    "memoryGB": {"default": 8, "defaultRequest": 4, "defaultLimit": 32, "defaultHeadless": 4,
                 "options": [1, 2, 4, 8, 16, 32, 64]},
    "gpus": {"options": [0, 1, 2, 4]},
}  # fmt: skip


class SessionAdapter(Protocol):
    """What a widget needs from a session object; every call runs on the runner loop.

    Answers are raw (server dicts, or models where the session already parses them);
    ``SessionSource`` turns them into models. Failures raise.
    """

    session: Any
    platform: str | None
    """The API URL calls go to, when the session says it (launch notices are per platform)."""

    async def fetch(self, kind: Kind | None, status: Status | None) -> list[Any]: ...
    async def info(self, ids: list[str]) -> list[Any]: ...
    async def logs(self, ids: list[str]) -> dict[str, str]: ...
    async def events(self, ids: list[str]) -> dict[str, Any]: ...
    async def stats(self) -> Any: ...
    async def context(self) -> Any: ...
    async def images(self, kind: Kind | None) -> list[Any]: ...
    async def create(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> list[str]: ...
    async def launch_replicas(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> list[LaunchOutcome]: ...
    async def destroy(self, ids: list[str]) -> dict[str, bool]: ...
    async def renew(self, ids: list[str]) -> dict[str, bool]: ...

    def secrets(self) -> Iterable[str]:
        """The token(s) and registry secret of the session, to hide from error messages."""
        ...


def adapter_for(session: Any) -> SessionAdapter:
    """:class:`OwnSessions` for this package's sessions, :class:`CanfarSessions` otherwise.

    Anything that is not ours is taken to have the official client's method names.
    """
    if isinstance(session, (Session, AsyncSession)):
        return OwnSessions(session)
    return CanfarSessions(session)


class OwnSessions:
    """This package's ``Session`` or ``AsyncSession``: typed, direct coroutine calls.

    A sync ``Session`` is used through its ``async_session`` (same connection and policy),
    so a widget's call never blocks a worker thread. The session's own ``errors=`` policy
    applies, except that a create always raises: the form must say why nothing launched.
    """

    def __init__(self, session: Session | AsyncSession) -> None:
        self.session = session
        self._async = session.async_session if isinstance(session, Session) else session
        self.platform: str | None = self._async.url

    async def fetch(self, kind: Kind | None, status: Status | None) -> list[Any]:
        return await self._async.fetch(kind=kind, status=status)

    async def fetch_body(
        self, kind: Kind | None, status: Status | None
    ) -> tuple[bytes, Callable[[], list[dict[str, Any]]]]:
        """The listing's raw body, and how to decode it (the request and checks of ``fetch``).

        Why: ``SessionSource`` compares the body with the last one and skips decoding,
        comparing and validating thousands of records when nothing changed; a new body is
        decoded with the client's own checks (an answer that is not a list of sessions
        raises ``UnexpectedAnswer`` as ``fetch`` does).
        """
        response = await self._async._wire.get("session", params=_fetch_params(kind, status, None))
        return response.content, lambda: _json_list_of_records(response)

    async def info(self, ids: list[str]) -> list[Any]:
        return await self._async.info(ids)

    async def logs(self, ids: list[str]) -> dict[str, str]:
        return await self._async.logs(ids) or {}

    async def events(self, ids: list[str]) -> dict[str, Any]:
        texts: dict[str, Any] = {}
        for item in await self._async.events(ids) or []:
            texts.update(item)
        return texts

    async def stats(self) -> Any:
        return await self._async.stats()

    async def context(self) -> Context:
        return await self._async.context()

    async def images(self, kind: Kind | None) -> list[Image]:
        return await self._async.images(kind)

    async def create(self, request: CreateRequest, registry: ContainerRegistry | None) -> list[str]:
        return await self._async.create(request, errors="raise", registry=registry)

    async def launch_replicas(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> list[LaunchOutcome]:
        """Each replica's outcome (created, found by name, unknown, failed); never raises per item."""
        return await self._async.launch_replicas(request, registry=registry)

    async def destroy(self, ids: list[str]) -> dict[str, bool]:
        return await self._async.destroy(ids)

    async def renew(self, ids: list[str]) -> dict[str, bool]:
        return await self._async.renew(ids)

    def secrets(self) -> list[str]:
        """Read at each call: an OIDC login replaces its access token as it refreshes."""
        settings = self._async._settings
        values: list[Any] = []
        auth = settings.auth
        if isinstance(auth, BearerAuth):
            values.append(auth._token)
        elif isinstance(auth, OIDCAuth):
            credential = auth.credential
            values += [credential.token.access, credential.token.refresh]
        registry = settings.registry
        if registry is not None:
            values += [registry.secret, registry.header_value()]
        return [text for text in map(secret_text, values) if text]


class CanfarSessions:
    """The official ``canfar`` client (sync or async), with the workarounds it needs.

    Example:
        >>> from canfar.sessions import Session as CanfarSession
        >>> adapter = CanfarSessions(CanfarSession())
        >>> await adapter.context()      # canfar has no context(): a direct GET
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        # canfar builds its HTTP client lazily and does not say its URL: its launch notices
        # go to every listener.
        self.platform: str | None = None
        # canfar keeps its token in fields that do not change while the client lives.
        self._secrets = [text for text in map(secret_text, _secret_candidates(session)) if text]

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``session.<name>(...)``: awaited when async; a sync call goes to a worker thread
        so the runner loop keeps serving other widgets meanwhile."""
        return await _call(getattr(self.session, name), *args, **kwargs)

    async def fetch(self, kind: Kind | None, status: Status | None) -> list[Any]:
        return list(await self._call("fetch", kind=kind, status=status) or [])

    async def info(self, ids: list[str]) -> list[Any]:
        return list(await self._call("info", ids) or [])

    async def logs(self, ids: list[str]) -> dict[str, str]:
        raw = await self._call("logs", ids)
        return {str(k): str(v) for k, v in (raw or {}).items()}

    async def events(self, ids: list[str]) -> dict[str, Any]:
        raw = await self._call("events", ids)
        if isinstance(raw, dict):
            return dict(raw)
        texts: dict[str, Any] = {}
        for item in raw or []:  # canfar's shape: [{id: text}, ...]
            if isinstance(item, dict):
                texts.update(item)
        return texts

    async def stats(self) -> Any:
        return await self._call("stats")

    async def context(self) -> Any:
        if callable(getattr(self.session, "context", None)):
            return await self._call("context")
        raw = await self._get_json("context")
        return DEFAULT_CONTEXT if raw is None else raw

    async def images(self, kind: Kind | None) -> list[Any]:
        if callable(getattr(self.session, "images", None)):
            return list(await self._call("images", kind) or [])
        return list(await self._get_json("image", {"type": kind} if kind else None) or [])

    async def create(self, request: CreateRequest, registry: ContainerRegistry | None) -> list[str]:
        # canfar reads registry credentials from its configuration when the client is built,
        # so a one-off registry needs a one-off client with the same settings.
        session = (
            self.session if registry is None else _canfar_with_registry(self.session, registry)
        )
        ids: list[str] = []
        try:
            result = await _call(session.create, **_create_kwargs(request), errors="raise")
            ids = [str(i) for i in result or []]
        finally:
            if session is not self.session:
                await _close_quietly(session)
            launches.announce(ids)  # canfar does not tell the widgets; ours does it itself
        return ids

    async def launch_replicas(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> list[LaunchOutcome]:
        """canfar gives only ids or raises: its ids are created replicas, numbered in order,
        and a create that gave none raises (``NOTHING_LAUNCHED``), as a failure would."""
        ids = await self.create(request, registry)
        if not ids:
            raise RuntimeError(NOTHING_LAUNCHED)
        return [LaunchOutcome(replica=n, id=i) for n, i in enumerate(ids, start=1)]

    async def destroy(self, ids: list[str]) -> dict[str, bool]:
        return dict(await self._call("destroy", ids) or {})

    async def renew(self, ids: list[str]) -> dict[str, bool]:
        return dict(await self._call("renew", ids) or {})

    def secrets(self) -> list[str]:
        return self._secrets

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``<base>/<path>`` with the session's own HTTP client (canfar has no method)."""
        client = getattr(self.session, "asynclient", None)
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
            log.debug("GET %s failed: %s", path, type(exc).__name__)
            return None


# -- helpers ----------------------------------------------------------------------------------


async def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    if inspect.iscoroutinefunction(method):
        return await method(*args, **kwargs)
    result = await asyncio.to_thread(method, *args, **kwargs)
    if inspect.isawaitable(result):  # a sync-looking wrapper that returned a coroutine
        result = await result
    return result


def secret_text(value: Any) -> str | None:
    """The text of a ``SecretStr`` (or str) worth hiding: four characters or more, else None."""
    value = revealed(value)
    return value if isinstance(value, str) and len(value) >= 4 else None


def _create_kwargs(request: CreateRequest) -> dict[str, Any]:
    """``CreateRequest`` -> keyword arguments of canfar's ``create(name, image, ...)``."""
    data = request.model_dump(by_alias=False)
    # replicas is not a form field, so CreateRequest leaves it out of dumps: read it directly.
    data["replicas"] = request.replicas
    if "gpus" in data and "gpu" not in data:
        data["gpu"] = data.pop("gpus")
    if "type" in data and "kind" not in data:
        data["kind"] = data.pop("type")
    keys = ("name", "image", "cores", "ram", "kind", "gpu", "cmd", "args", "env", "replicas")
    return {k: data[k] for k in keys if k in data and data[k] is not None}


def _registry_header(registry: Any) -> str | None:
    """``base64(user:secret)`` of a registry record of either client."""
    user = getattr(registry, "username", None)
    secret = secret_text(getattr(registry, "secret", None))
    if not user or not secret:
        return None
    return base64.b64encode(f"{user}:{secret}".encode()).decode()


def _secret_candidates(session: Any) -> list[Any]:
    """Token-like values reachable from a canfar session (its fields, config and registry)."""
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
        for name in ("settings", "_settings", "config", "registry", "auth", "_auth", "credentials"):
            child = getattr(obj, name, None)
            if child is not None and not isinstance(child, (str, bytes, int, float)):
                visit(child, depth + 1)

    try:
        visit(session, 0)
    except Exception:  # introspection of an odd object must never break a widget
        log.debug("could not inspect session for secrets", exc_info=True)
    return found


def _canfar_with_registry(session: Any, registry: ContainerRegistry) -> Any:
    """A fresh canfar session like ``session`` but with ``registry`` credentials."""
    from canfar.models.registry import ContainerRegistry as CanfarRegistry  # optional dependency

    official = CanfarRegistry(
        url=registry.url, username=registry.username, secret=secret_text(registry.secret)
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
