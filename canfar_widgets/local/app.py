"""The tornado application: skaha v1 routes, auth, params, error answers, session pages.

Wire rules kept exactly as the server's (see ``docs/local-platform.md``): ``Content-Type`` is
``application/json`` or ``text/plain`` with no charset parameter; error bodies are the
message and a newline; POST parameters are read only from form-encoded requests (query
string and body) or multipart fields; authenticated answers carry ``x-vo-authenticated``.

Example:
    >>> app = make_app(state)          # doctest: +SKIP
    >>> app.listen(0, "127.0.0.1")     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import tornado.web
from tornado import httputil

from canfar_widgets.local.catalog import IMAGE_TYPES
from canfar_widgets.local.errors import PlatformError, bad_request, not_found
from canfar_widgets.local.faults import Faults
from canfar_widgets.local.formats import compact_json, gson_pretty, java_split
from canfar_widgets.local.identity import User, Users
from canfar_widgets.local.records import ACTIVE, RUNNING
from canfar_widgets.local.settings import Settings
from canfar_widgets.local.store import URL_KINDS, SessionStore
from canfar_widgets.local.validation import Params, check_app, check_create

__all__ = ["AppState", "make_app"]

log = logging.getLogger("canfar_widgets.local")

JSON = "application/json"
TEXT = "text/plain"
_FORM = "application/x-www-form-urlencoded"
_API = "/skaha/v1/"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_MULTIPART = "multipart/form-data"


@dataclass
class AppState:
    """What every handler needs."""

    store: SessionStore
    users: Users
    settings: Settings
    faults: Faults
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    """API requests received, by ``(method, path relative to /skaha/v1[?view=V])``."""


class _Base(tornado.web.RequestHandler):
    """Exact headers: no default ``Content-Type``/``Server``, no ETag."""

    def initialize(self, state: AppState) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        self.clear_header("Content-Type")  # tornado would add "text/html; charset=UTF-8"
        self.clear_header("Server")

    def compute_etag(self) -> None:
        return None  # the server sends none, and hashing big lists costs time

    def answer(self, body: str | bytes = b"", content_type: str | None = None,
               status: int = 200) -> None:
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


class ApiHandler(_Base):
    """Base of the ``/skaha`` API: faults, authentication, parameters, error mapping."""

    user: User

    async def prepare(self) -> None:
        self._count()
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
        if refused == 403:
            self.fail(PlatformError(403, "Not authorized to use the skaha system"))
            return
        try:
            self.user = self.state.users.authenticate(
                self.request.headers.get("Authorization"), self.get_cookie("CADC_SSO"))
        except PlatformError as err:
            self.fail(err)
            return
        self.set_header("x-vo-authenticated", self.user.name)

    def _count(self) -> None:
        # Path and view only: the rest of a query string may carry the user's values.
        path = self.request.path
        path = path[len(_API):] if path.startswith(_API) else path
        view = self.query("view")
        self.state.requests[(self.request.method or "", path + (f"?view={view}" if view else ""))] += 1

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
            self.fail(PlatformError(500, f"unexpected exception: {type(exc).__name__}: {exc}"))

    def params(self) -> Params:
        """Parameters the way cadc-rest's SyncInput reads them."""
        request = self.request
        query = request.query_arguments
        if request.method == "POST":
            media = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if media == _FORM:
                merged: dict[str, list[bytes]] = {k: list(v) for k, v in query.items()}
                for key, values in request.body_arguments.items():
                    merged.setdefault(key, []).extend(values)
                return _decode(merged)
            if media == _MULTIPART:
                return _decode(request.body_arguments)
            return Params()  # any other body: the server sees no parameters at all
        return _decode(query)

    def query(self, name: str) -> str | None:
        values = self.request.query_arguments.get(name)
        return values[0].decode("utf-8", "replace") if values else None


def _decode(raw: dict[str, list[bytes]]) -> Params:
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

    async def get(self, sub: str | None) -> None:
        await self.run(self._get, sub)

    async def post(self, sub: str | None) -> None:
        await self.run(self._post, sub)

    async def delete(self, sub: str | None) -> None:
        await self.run(self._delete, sub)

    async def _get(self, sub: str | None) -> None:
        store = self.state.store
        session_id, is_app, appid = _parse_path(sub)
        view = self.query("view")
        user = self.user.name
        if session_id is None:
            if view == "stats":
                if self.state.faults.stats_unavailable:
                    raise PlatformError(503, "temporarily unavailable: null",
                                        headers={"Retry-After": "30"})
                self.answer(store.stats(), JSON)
                return
            self.answer(store.listing(user, self.query("type"), self.query("status"), view), JSON)
        elif is_app:
            if appid is None:
                self.answer(store.app_listing(user, self.query("status"), view), JSON)
            else:
                self.answer(store.find_app(user, session_id, appid).pretty(), JSON)
        elif view == "logs":
            self.answer(await store.logs(user, session_id), TEXT)
        elif view == "events":
            self.answer(store.events(user, session_id), TEXT)
        else:
            record = store.find(user, session_id) if session_id else store.first(user)
            if record is None:
                raise not_found(f"session {session_id} not found")
            self.answer(record.pretty(), JSON)

    def _post(self, sub: str | None) -> None:
        store = self.state.store
        session_id, is_app, appid = _parse_path(sub)
        params = self.params()
        if params.get("image") is None and (is_app or session_id is None):
            raise bad_request("Missing parameter 'image'")
        if session_id is None:
            spec = check_create(
                params, self.request.headers, self.state.settings, username=self.user.name,
                active_interactive=store.active_interactive(self.user.name))
            record = store.create(self.user, spec)
            self.answer(record.id + "\n", TEXT)
        elif is_app:
            if appid is not None:
                raise bad_request("Cannot modify an existing app.")
            image, cores, ram = check_app(params, self.state.settings)
            app = store.create_app(self.user, session_id, image, cores, ram)
            self.answer(f"{app.appid}\n", TEXT)
        else:
            action = params.get("action")
            if not action:
                raise bad_request("Cannot modify an existing session")
            if action.lower() != "renew":
                raise bad_request("unrecognized action")
            store.renew(self.user, session_id)
            self.answer()

    def _delete(self, sub: str | None) -> None:
        session_id, is_app, appid = _parse_path(sub)
        if session_id is None:
            raise bad_request("Cannot kill all sessions.")
        if is_app:
            if appid is None:
                raise bad_request("Missing app ID")
            self.state.store.delete_app(self.user.name, session_id, appid)
        elif session_id:
            self.state.store.delete(self.user.name, session_id)
        self.answer()


class ImageHandler(ApiHandler):
    """``GET /skaha/v1/image[?type=T]``."""

    async def get(self) -> None:
        await self.run(self._get)

    def _get(self) -> None:
        kind = self.query("type")
        if kind is not None and kind not in IMAGE_TYPES:
            raise bad_request(f"unknown type: {kind}")
        images = [dict(i) for i in self.state.settings.images
                  if kind is None or kind in i.get("types", ())]
        self.answer(gson_pretty(images), JSON)


class ContextHandler(ApiHandler):
    """``GET /skaha/v1/context``: compact JSON (org.json)."""

    async def get(self) -> None:
        await self.run(lambda: self.answer(compact_json(self.state.settings.ctx), JSON))


class RepositoryHandler(ApiHandler):
    """``GET /skaha/v1/repository``: the registry hosts."""

    async def get(self) -> None:
        await self.run(lambda: self.answer(gson_pretty(list(self.state.settings.allowed_hosts)),
                                           JSON))


_CAPABILITIES = """<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1">
{entries}
</vosi:capabilities>
"""
_CAPABILITY = """  <capability standardID="{std}">
    <interface xsi:type="vs:ParamHTTP" role="std">
      <accessURL use="base">{url}</accessURL>
      <securityMethod standardID="ivo://ivoa.net/sso#token"/>
    </interface>
  </capability>"""


class CapabilitiesHandler(_Base):
    """``GET /skaha/capabilities``: VOSI, public (lists the v1 standard ids)."""

    def get(self) -> None:
        base = self.state.store.base_url + "/skaha/v1"
        entries = "\n".join(
            _CAPABILITY.format(std=f"http://www.opencadc.org/std/platform#{name}-1",
                               url=f"{base}/{name}")
            for name in ("session", "context", "image", "repository"))
        self.answer(_CAPABILITIES.format(entries=entries), "text/xml")


class AvailabilityHandler(_Base):
    """``GET /skaha/availability``: VOSI availability, always available."""

    def get(self) -> None:
        self.answer(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
            "  <vosi:available>true</vosi:available>\n"
            "  <vosi:note>Skaha Service Available.</vosi:note>\n"
            "</vosi:availability>\n", "text/xml")


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
        page = _PAGE.format(title=html.escape(title), kind=html.escape(record.type),
                            id=html.escape(record.id), name=html.escape(record.name),
                            image=html.escape(record.image), status=html.escape(record.status),
                            user=html.escape(record.userid))
        self.answer(page, "text/html")


class NotFoundHandler(_Base):
    """Unmapped paths (``/skaha/v0/...`` included): Tomcat's HTML 404."""

    def prepare(self) -> None:
        path = html.escape(self.request.path)
        self.answer(
            "<!doctype html><html lang=\"en\"><head><title>HTTP Status 404 – Not Found</title>"
            "</head><body><h1>HTTP Status 404 – Not Found</h1><p><b>Message</b> "
            f"The requested resource [{path}] is not available</p></body></html>",
            "text/html;charset=utf-8", 404)


def _access_log(handler: tornado.web.RequestHandler) -> None:
    # Path only: the query string of a create can carry the user's env values.
    request = handler.request
    log.debug("%s %s %d %.1fms", request.method, request.path, handler.get_status(),
              1000.0 * request.request_time())


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
        (r"/session/(desktop|notebook|carta|contrib|firefly)/([^/]+)(/.*)?", SessionPageHandler,
         kw),
    ]
    return tornado.web.Application(
        routes, default_handler_class=NotFoundHandler, default_handler_args=kw,
        log_function=_access_log, compress_response=False,
    )

