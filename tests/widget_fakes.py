"""An in-memory skaha v1 behind ``httpx.MockTransport``, for widget tests.

The widgets under test run the real stack (widget -> SessionSource -> AsyncSession -> Wire ->
httpx) and only the network is replaced, so tests can assert the exact HTTP made.

Example:
    >>> sky = FakeSkaha()
    >>> sky.add("abc12345", status="Running", log="hello\\n")
    >>> session = sky.session()
    >>> form = LaunchForm(session)
    >>> [r.method for r in sky.requests]
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
from support import wait_until  # noqa: F401  (re-exported)

from canfar_widgets.sessions import AsyncSession

BASE = "https://canfar.test/skaha/v1/"
TOKEN = "tok-SENTINEL-7f3a9"

CONTEXT = {
    "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 8, "options": [1, 2, 4, 8, 16]},
    "memoryGB": {"default": 8, "defaultRequest": 4, "defaultLimit": 32,
                 "options": [1, 2, 4, 8, 16, 32, 64]},
    "gpus": {"options": [1, 2, 3, 4]},
    "maxInteractiveSessions": "5",
}  # fmt: skip
IMAGES = [
    {"id": "images.canfar.net/skaha/astroml:latest", "types": ["notebook", "headless"]},
    {"id": "images.canfar.net/skaha/terminal:1.1.2", "types": ["headless", "desktop-app"]},
    {"id": "images.canfar.net/skaha/carta:4.0", "types": ["carta"]},
]
STATS = {
    "cores": {"requestedCPUCores": 12.5, "cpuCoresAvailable": 64.0,
              "maxCPUCores": {"cpuCores": 8.0, "withRam": "32Gi"}},
    "ram": {"requestedRAM": "137.439G", "ramAvailable": "549.756G",
            "maxRAM": {"ram": "32Gi", "withCPUCores": 8.0}},
}  # fmt: skip


class FakeSkaha:
    """Sessions, logs and events in dicts; every request is kept in ``requests``.

    Hooks: ``create_reply`` (status, text) for POSTs; ``stats_reply`` (status, body,
    headers); ``fail[path] = (status, text)`` to fail any GET path once or always.
    """

    def __init__(self, base: str = BASE) -> None:
        self.base = base  # the platform's API URL (another one for a second platform)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.events: dict[str, str] = {}
        self.context: dict[str, Any] = dict(CONTEXT)
        self.images: list[dict[str, Any]] = list(IMAGES)
        self.stats_reply: tuple[int, Any, dict[str, str]] = (200, STATS, {})
        self.create_reply: tuple[int, str] | None = None
        self.fail: dict[str, tuple[int, str]] = {}
        self.requests: list[httpx.Request] = []
        self.on_request: Callable[[httpx.Request], None] | None = None
        self._lock = threading.Lock()
        self._next = 0

    # -- setup ---------------------------------------------------------------------------------

    def add(
        self,
        sid: str,
        *,
        status: str = "Running",
        kind: str = "headless",
        log: str = "",
        events: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        record = {
            "id": sid, "userid": "alice", "type": kind, "status": status, "name": name or sid,
            "image": "images.canfar.net/skaha/terminal:1.1.2",
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }  # fmt: skip
        self.sessions[sid] = record
        self.logs[sid] = log
        if events is not None:
            self.events[sid] = events
        return record

    def session(self, *, retries: bool = True, **kwargs: Any) -> AsyncSession:
        """A real AsyncSession talking to this fake; ``retries=False`` fails GETs at once."""
        session = AsyncSession(
            url=self.base, token=TOKEN, transport=httpx.MockTransport(self.handle), **kwargs
        )
        if not retries:
            from canfar_widgets.wire import NO_RETRY

            session._wire.retry = NO_RETRY
        return session

    # -- inspection -------------------------------------------------------------------------------

    def made(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        """Requests made, optionally filtered by method and path (relative to the base)."""
        out = []
        for request in list(self.requests):
            rel = str(request.url.copy_with(query=None))[len(self.base) :]
            if (method is None or request.method == method) and (path is None or rel == path):
                out.append(request)
        return out

    # -- the server ---------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self._lock:
            self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        rel = str(request.url.copy_with(query=None))[len(self.base) :]
        query = dict(request.url.params)
        key = rel + ("?view=" + query["view"] if "view" in query else "")
        if key in self.fail:
            status, text = self.fail[key]
            return httpx.Response(status, text=text)
        if rel == "context":
            return httpx.Response(200, json=self.context)
        if rel == "image":
            kind = query.get("type")
            return httpx.Response(
                200, json=[i for i in self.images if not kind or kind in i["types"]]
            )
        if rel == "session" and request.method == "GET":
            if query.get("view") == "stats":
                status, body, headers = self.stats_reply
                content = json.dumps(body) if not isinstance(body, str) else body
                return httpx.Response(status, text=content, headers=headers)
            return httpx.Response(200, json=list(self.sessions.values()))
        if rel == "session" and request.method == "POST":
            if self.create_reply is not None:
                status, text = self.create_reply
                return httpx.Response(status, text=text)
            form = dict(parse_qsl(request.content.decode()))
            with self._lock:
                self._next += 1
                sid = f"new{self._next:05d}"
            self.add(
                sid, status="Pending", kind=form.get("type", "headless"), name=form.get("name")
            )
            return httpx.Response(200, text=sid + "\n")
        if rel.startswith("session/"):
            sid = rel.split("/", 1)[1]
            if request.method == "DELETE":
                found = self.sessions.pop(sid, None)
                return httpx.Response(
                    200 if found else 404, text="" if found else f"session {sid} not found\n"
                )
            record = self.sessions.get(sid)
            view = query.get("view")
            if view == "logs":
                return httpx.Response(200, text=self.logs.get(sid, ""))
            if record is None:
                return httpx.Response(404, text=f"session {sid} not found\n")
            if view == "events":
                return httpx.Response(200, text=self.events.get(sid, "<none>\n"))
            return httpx.Response(200, json=record)
        return httpx.Response(404, text="<html>not found</html>")


def send(widget: Any, **content: Any) -> None:
    """Deliver a front-end message to a widget, as the comm would."""
    widget._dispatch_message(widget, content, [])
