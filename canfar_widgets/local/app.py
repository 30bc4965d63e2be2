"""The tornado application: skaha v1 routes, auth, params, error answers, session pages.

Wire rules kept exactly as the server's (see ``docs/local-platform.md``): ``Content-Type`` is
``application/json`` or ``text/plain`` with no charset parameter; error bodies are the
message and a newline (500s without it); POST parameters are read only from form-encoded
requests (query string and body) or multipart fields, and parameter names are
case-insensitive; action answers carry ``server: OpenCADC/cadc-rest``, authenticated ones
``x-vo-authenticated``; PUT and HEAD are cadc-rest's 405.

Two local rules protect a platform that runs commands from web pages the user visits: a
request with an ``Origin`` other than the platform's own is refused, and the ``CADC_SSO``
cookie is accepted for GET only (a state-changing request needs the ``Authorization``
header, which no other site can make a browser send).

Example:
    >>> app = make_app(state)          # doctest: +SKIP
    >>> app.listen(0, "127.0.0.1")     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import html
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tornado.web
from tornado import httputil
from tornado.iostream import StreamClosedError

from canfar_widgets.local.catalog import IMAGE_TYPES
from canfar_widgets.local.errors import PlatformError, bad_request, not_found
from canfar_widgets.local.faults import Faults
from canfar_widgets.local.formats import compact_json, gson_pretty, has_text, java_split
from canfar_widgets.local.identity import User, Users
from canfar_widgets.local.records import ACTIVE, RUNNING
from canfar_widgets.local.settings import Settings
from canfar_widgets.local.store import URL_KINDS, SessionStore
from canfar_widgets.local.validation import (
    Params,
    check_app,
    check_create,
    check_label,
    unexpected,
)

__all__ = ["AppState", "make_app"]

log = logging.getLogger("canfar_widgets.local")

JSON = "application/json"
TEXT = "text/plain"
_FORM = "application/x-www-form-urlencoded"
_API = "/skaha/v1/"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MULTIPART = "multipart/form-data"
_SERVER = "OpenCADC/cadc-rest"  # cadc-rest RestAction.SERVER_INFO
_SAFE = frozenset({"GET", "HEAD"})
_ID_LABEL = "canfar.net/id"
_LOG_CHUNK = 1 << 16  # bytes of a log read and sent at a time
# Views kept in the request counters of callers without a valid token (anything else is "*").
_VIEWS = frozenset({"all", "stats", "interactive", "logs", "events"})
_MAX_COUNTER_KEYS = 10_000  # past this, even authenticated requests are counted by route
_COOKIE_REFUSED = (
    "The CADC_SSO cookie is accepted for GET requests only: send the token in an "
    "'Authorization: Bearer' header to {method} (the local platform refuses cookie-only "
    "state changes, so no other web page can make your browser run a command)"
)


@dataclass
class AppState:
    """What every handler needs."""

    store: SessionStore
    users: Users
    settings: Settings
    faults: Faults
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """API requests received, by ``(method, path relative to /skaha/v1[?view=V])``.

    Bounded: requests without a valid token are counted by route (``session/{id}``), and
    past ``_MAX_COUNTER_KEYS`` distinct keys every request is.
    """

    @functools.cached_property
    def own_origins(self) -> frozenset[str]:
        """The origins a browser shows for pages of this platform (``http://host:port``)."""
        base = urlsplit(self.store.base_url)
        port = base.port
        hosts = {base.hostname or "127.0.0.1", "localhost", "127.0.0.1", "[::1]"}
        return frozenset(
            f"http://{h if ':' not in h or h.startswith('[') else f'[{h}]'}:{port}" for h in hosts
        )


class _Base(tornado.web.RequestHandler):
    """Exact headers: no default ``Content-Type``/``Server``, no ETag."""

    def initialize(self, state: AppState) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        self.clear_header("Content-Type")  # tornado would add "text/html; charset=UTF-8"
        self.clear_header("Server")

    def compute_etag(self) -> None:
        return None  # the server sends none, and hashing big lists costs time

    def answer(
        self, body: str | bytes = b"", content_type: str | None = None, status: int = 200
    ) -> None:
        self.set_status(status)
        if content_type is not None:
            self.set_header("Content-Type", content_type)
        self.finish(body)

    def fail(self, error: PlatformError) -> None:
        self.set_status(error.status)
        for name, value in error.headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", TEXT)
        self.finish(error.body())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Anything tornado itself rejects (bad method, malformed request) still answers text.
        self.set_header("Content-Type", TEXT)
        self.finish(f"{status_code} {httputil.responses.get(status_code, 'Unknown')}\n")

    def foreign_origin(self) -> str | None:
        """The request's ``Origin`` if it is not this platform's own (a cross-site request)."""
        origin = self.request.headers.get("Origin")
        if origin is None or origin in self.state.own_origins:
            return None
        return origin

    def refuse_foreign_origin(self) -> bool:
        """Answer 403 to a cross-origin request (before anything else runs); True if refused."""
        origin = self.foreign_origin()
        if origin is None:
            return False
        self.answer(
            f"cross-origin request refused: Origin {origin} is not this platform "
            f"({self.state.store.base_url})\n",
            TEXT,
            403,
        )
        return True

    def unsupported(self, allow: str) -> None:
        """cadc-rest's answer to a method the servlet has no action for (before any auth)."""
        self.set_header("Allow", allow)
        self.answer(f"unsupported: HTTP {self.request.method}\n", TEXT, 405)


class ApiHandler(_Base):
    """Base of the ``/skaha`` API: faults, authentication, parameters, error mapping."""

    user: User
    allow = "GET"  # the methods the servlet has actions for (cadc-rest's Allow header)
    _params: Params | None = None  # read once per request (tornado makes a handler per request)

    async def prepare(self) -> None:
        caller = self._caller()
        self._count(caller)
        if self.refuse_foreign_origin():
            return
        method = self.request.method or ""
        if method not in {m.strip() for m in self.allow.split(",")}:
            self.unsupported(self.allow)
            return
        faults = self.state.faults
        delay = faults.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        injected = faults.injected_status()
        if injected is not None:
            self.fail(PlatformError(injected, f"injected fault: {injected}"))
            return
        refused = faults.auth_status
        if refused == 401:
            self.fail(PlatformError(401, "Unauthorized", headers=_CHALLENGE, newline=False))
            return
        self.set_header("Server", _SERVER)  # from here on the action runs (RestAction.run)
        if refused == 403:
            self.fail(PlatformError(403, "Not authorized to use the skaha system"))
            return
        if isinstance(caller, PlatformError):
            if caller.status == 401:  # refused by RestServlet before the action
                self.clear_header("Server")
            self.fail(caller)
            return
        self.user = caller
        self.set_header("x-vo-authenticated", self.user.name)

    def _caller(self) -> User | PlatformError:
        """Who the credentials name, or the error answer (the cookie counts for GET only)."""
        authorization = self.request.headers.get("Authorization")
        cookie = self.get_cookie("CADC_SSO")
        if cookie is not None and not authorization and self.request.method not in _SAFE:
            return PlatformError(403, _COOKIE_REFUSED.format(method=self.request.method))
        try:
            return self.state.users.authenticate(
                authorization, cookie if self.request.method in _SAFE else None
            )
        except PlatformError as err:
            return err

    def _count(self, caller: User | PlatformError) -> None:
        # Path and view only: the rest of a query string may carry the user's values. Without
        # a valid token, by route only, so unauthenticated requests cost no memory per path.
        path = self.request.path
        path = path[len(_API) :] if path.startswith(_API) else path
        view = self.param("view")
        requests = self.state.requests
        key = (self.request.method or "", path + (f"?view={view}" if view else ""))
        if key not in requests and (
            isinstance(caller, PlatformError) or len(requests) >= _MAX_COUNTER_KEYS
        ):
            parts = path.split("/")
            # any second segment makes it an app request: "session/{id}/app/{appid}"
            route = "/".join((parts[0], "{id}", "app", "{appid}")[: min(len(parts), 4)])
            route += "/..." if len(parts) > 4 else ""
            shown = view if view in _VIEWS else "*"
            key = (self.request.method or "", route + (f"?view={shown}" if view else ""))
        requests[key] += 1

    async def run(self, action: Callable[..., Any], *args: Any) -> None:
        """Call ``action`` and turn its result or error into the answer."""
        try:
            result = action(*args)
            if inspect.isawaitable(result):
                await result
        except PlatformError as err:
            self.fail(err)
        except Exception as exc:
            log.exception("unexpected error in %s %s", self.request.method, self.request.path)
            self.fail(unexpected(f"{type(exc).__name__}: {exc}"))

    def params(self) -> Params:
        """Parameters the way cadc-rest's SyncInput reads them (names case-insensitive)."""
        if self._params is None:
            self._params = self._read_params()
        return self._params

    def _read_params(self) -> Params:
        request = self.request
        query = request.query_arguments
        if request.method != "POST":
            return _decode(query)
        content_type = request.headers.get("Content-Type")
        if content_type is not None:
            cut = content_type.find(";")
            if cut > 0:
                content_type = content_type[:cut]
        if content_type is not None and content_type.lower() == _FORM:
            merged: dict[str, list[bytes]] = {k: list(v) for k, v in query.items()}
            body = httputil.parse_qs_bytes(request.body, keep_blank_values=True)
            for key, values in body.items():
                merged.setdefault(key, []).extend(values)
            return _decode(merged)
        if content_type is not None and content_type.startswith(_MULTIPART):
            return _decode(request.body_arguments)  # form fields only, as commons-fileupload
        return Params()  # any other body: the server sees no parameters at all

    def param(self, name: str) -> str | None:
        """One parameter, first value, name case-insensitive (``?VIEW=stats`` works)."""
        return self.params().get(name)


def _decode(raw: Mapping[str, list[bytes]]) -> Params:
    return Params({k: [v.decode("utf-8", "replace") for v in vs] for k, vs in raw.items()})


def _parse_path(sub: str | None) -> tuple[str | None, bool, str | None]:
    """(session id, is an app request, app id) from the path after ``/session``."""
    if sub is None:
        return None, False, None
    path = unquote(sub[1:])
    parts = java_split(path, "/")
    if len(parts) > 3:
        raise bad_request(f"Invalid request: {path}")
    return parts[0], len(parts) > 1, parts[2] if len(parts) > 2 else None


class SessionHandler(ApiHandler):
    """``/skaha/v1/session[/{id}[/app[/{appid}]]]``."""

    allow = "GET, POST, DELETE"

    async def get(self, sub: str | None) -> None:
        await self.run(self._get, sub)

    async def post(self, sub: str | None) -> None:
        await self.run(self._post, sub)

    async def delete(self, sub: str | None) -> None:
        await self.run(self._delete, sub)

    async def _get(self, sub: str | None) -> None:
        store = self.state.store
        session_id, is_app, appid = _parse_path(sub)
        view = self.param("view")
        user = self.user.name
        if session_id is None:
            if view == "stats":  # compared case-sensitively, like "all", "logs", "events"
                if self.state.faults.stats_unavailable:
                    raise PlatformError(
                        503, "temporarily unavailable: null", headers={"Retry-After": "30"}
                    )
                if not store.storage.mounted:  # jobs have no /arc here: say so (not in the body)
                    self.set_header("X-Local-Storage", f"no /arc for jobs: {store.storage.note}")
                self.answer(store.stats(), JSON)
                return
            if view is not None and view.lower() == "interactive":
                # GetAction: equalsIgnoreCase, and listInteractiveSessions ignores type=
                self.answer(store.listing(user, None, self.param("status"), "interactive"), JSON)
                return
            self.answer(store.listing(user, self.param("type"), self.param("status"), view), JSON)
        elif is_app:
            if appid is None:  # lists every desktop-app of the caller: the id is not used
                self.answer(store.app_listing(user, self.param("status"), view), JSON)
            else:
                if has_text(session_id):
                    check_label(_ID_LABEL, session_id)
                self.answer(store.find_app(user, session_id, appid).pretty(), JSON)
        elif view == "logs":
            check_label(_ID_LABEL, session_id)  # the kubectl label selector is built first
            await self._stream_logs(store.log_parts(user, session_id))
        elif view == "events":
            check_label(_ID_LABEL, session_id)
            self.answer(store.events(user, session_id), TEXT)
        else:
            if not has_text(session_id):  # no id label in the selector: the first session
                record = store.first(user)
            else:
                check_label(_ID_LABEL, session_id)
                record = store.find(user, session_id)
            if record is None:
                raise not_found(f"session {session_id} not found")
            self.answer(record.pretty(), JSON)

    async def _stream_logs(self, parts: list[Path | bytes]) -> None:
        """Send the log in chunks, each flushed before the next is read, so a reader costs
        the platform one chunk, whatever the log's size (the server streams it too)."""
        self.set_status(200)
        self.set_header("Content-Type", TEXT)
        for part in parts:
            if isinstance(part, bytes):
                self.write(part)
                continue
            try:
                handle = await asyncio.to_thread(open, part, "rb")
            except OSError:
                continue  # no log yet (or already deleted): nothing to add
            try:
                while chunk := await asyncio.to_thread(handle.read, _LOG_CHUNK):
                    self.write(chunk)
                    await self.flush()
            except StreamClosedError:
                return  # the reader went away
            finally:
                handle.close()
        self.finish()

    def _post(self, sub: str | None) -> None:
        store = self.state.store
        session_id, is_app, appid = _parse_path(sub)
        params = self.params()
        if params.get("image") is None and (is_app or session_id is None):
            raise bad_request("Missing parameter 'image'")
        if session_id is None:
            spec = check_create(
                params,
                self.request.headers,
                self.state.settings,
                username=self.user.name,
                active_interactive=store.active_interactive(self.user.name),
            )
            record = store.create(self.user, spec)
            self.answer(record.id + "\n", TEXT)
        elif is_app:
            if appid is not None:
                raise bad_request("Cannot modify an existing app.")
            image, cores, ram = check_app(params, self.state.settings)
            check_label(_ID_LABEL, session_id)
            app = store.create_app(self.user, session_id, image, cores, ram)
            self.answer(f"{app.appid}\n", TEXT)
        else:
            action = params.get("action")
            if not action:
                raise bad_request("Cannot modify an existing session")
            if action.lower() != "renew":
                raise bad_request("unrecognized action")
            check_label(_ID_LABEL, session_id)
            store.renew(self.user, session_id)
            self.answer()

    def _delete(self, sub: str | None) -> None:
        session_id, is_app, appid = _parse_path(sub)
        if session_id is None:
            raise bad_request("Cannot kill all sessions.")
        if is_app:
            if not has_text(appid):
                raise bad_request("Missing app ID")
            assert appid is not None
            check_label(_ID_LABEL, session_id)  # not swallowed for apps, unlike sessions
            check_label("canfar.net/app-id", appid)
            self.state.store.delete_app(self.user.name, session_id, appid)
        elif session_id:
            self.state.store.delete(self.user.name, session_id)  # errors swallowed: always 200
        self.answer()


class ImageHandler(ApiHandler):
    """``GET /skaha/v1/image[?type=T]``."""

    async def get(self) -> None:
        await self.run(self._get)

    def _get(self) -> None:
        kind = self.param("type")
        if kind is not None and kind not in IMAGE_TYPES:
            raise bad_request(f"unknown type: {kind}")
        images = [
            dict(i)
            for i in self.state.settings.images
            if kind is None or kind in i.get("types", ())
        ]
        self.answer(gson_pretty(images), JSON)


class ContextHandler(ApiHandler):
    """``GET /skaha/v1/context``: compact JSON (org.json)."""

    async def get(self) -> None:
        await self.run(lambda: self.answer(compact_json(self.state.settings.ctx), JSON))


class RepositoryHandler(ApiHandler):
    """``GET /skaha/v1/repository``: the registry hosts, compact (org.json JSONWriter)."""

    async def get(self) -> None:
        await self.run(
            lambda: self.answer(compact_json(list(self.state.settings.allowed_hosts)), JSON)
        )


_CAPABILITIES_HOST = "https://replace.me.com"  # cadc-vosi rewrites it to the serving host


@functools.cache
def _capabilities() -> str:
    """skaha's own ``capabilities.xml``, shipped next to this module (read once).

    It lists the v0 legacy entry, VOSI, logControl and the four v1 standards, each with
    cookie, X.509 and token access, at ``https://replace.me.com`` as skaha ships it.
    """
    return files("canfar_widgets.local").joinpath("capabilities.xml").read_text(encoding="utf-8")


class CapabilitiesHandler(_Base):
    """``GET /skaha/capabilities``: VOSI, public (lists the v1 standard ids)."""

    def prepare(self) -> None:
        if self.request.method not in _SAFE:
            self.unsupported("GET, HEAD")

    def head(self) -> None:
        self.get()

    def get(self) -> None:
        # skaha's own capabilities.xml, pointing at this platform
        self.answer(
            _capabilities().replace(_CAPABILITIES_HOST, self.state.store.base_url), "text/xml"
        )


class AvailabilityHandler(_Base):
    """``GET /skaha/availability``: VOSI availability, always available."""

    def get(self) -> None:
        self.answer(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
            "  <vosi:available>true</vosi:available>\n"
            "  <vosi:note>Skaha Service Available.</vosi:note>\n"
            "</vosi:availability>\n",
            "text/xml",
        )


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif">
<h1>{title}</h1>
<p>This is the local CANFAR platform's stand-in for a <b>{kind}</b> session: no container
runs here.</p>
<dl><dt>id</dt><dd id="session-id">{id}</dd><dt>name</dt><dd id="session-name">{name}</dd>
<dt>image</dt><dd>{image}</dd><dt>status</dt><dd>{status}</dd><dt>user</dt><dd>{user}</dd></dl>
</body></html>
"""


class SessionPageHandler(_Base):
    """What a ``connectURL`` opens: a small page naming the session (404 once it is gone)."""

    def get(self, segment: str, session_id: str, _rest: str | None) -> None:
        record = self.state.store.lookup(session_id)
        if record is None or record.type != URL_KINDS[segment] or record.status not in ACTIVE:
            self.answer(f"session {html.escape(session_id)} not found\n", TEXT, 404)
            return
        if record.status != RUNNING:  # the ingress has no ready backend yet
            self.set_header("Retry-After", "1")
            self.answer("session is starting\n", TEXT, 503)
            return
        title = f"{record.type} session {record.name}"
        page = _PAGE.format(
            title=html.escape(title),
            kind=html.escape(record.type),
            id=html.escape(record.id),
            name=html.escape(record.name),
            image=html.escape(record.image),
            status=html.escape(record.status),
            user=html.escape(record.userid),
        )
        self.answer(page, "text/html")


class NotFoundHandler(_Base):
    """Unmapped paths (``/skaha/v0/...`` included): Tomcat's HTML 404."""

    def prepare(self) -> None:
        path = html.escape(self.request.path)
        self.answer(
            '<!doctype html><html lang="en"><head><title>HTTP Status 404 – Not Found</title>'
            "</head><body><h1>HTTP Status 404 – Not Found</h1><p><b>Message</b> "
            f"The requested resource [{path}] is not available</p></body></html>",
            "text/html;charset=utf-8",
            404,
        )


def _access_log(handler: tornado.web.RequestHandler) -> None:
    # Path only: the query string of a create can carry the user's env values.
    request = handler.request
    log.debug(
        "%s %s %d %.1fms",
        request.method,
        request.path,
        handler.get_status(),
        1000.0 * request.request_time(),
    )


def make_app(state: AppState) -> tornado.web.Application:
    """The tornado application for one platform."""
    kw = {"state": state}
    routes: list[Any] = [
        (r"/skaha/v1/session(/.*)?", SessionHandler, kw),
        (r"/skaha/v1/image", ImageHandler, kw),
        (r"/skaha/v1/context", ContextHandler, kw),
        (r"/skaha/v1/repository", RepositoryHandler, kw),
        (r"/skaha/capabilities", CapabilitiesHandler, kw),
        (r"/skaha/availability", AvailabilityHandler, kw),
        (
            r"/session/(desktop|notebook|carta|contrib|firefly)/([^/]+)(/.*)?",
            SessionPageHandler,
            kw,
        ),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=kw,
        log_function=_access_log,
        compress_response=False,
    )
