"""A tiny stdlib skaha v1 server on 127.0.0.1 for tests that need a real socket.

Used where respx cannot reach: a Jupyter kernel (another process), a subprocess, and the
httpx/httpcore logging path (respx replaces the layer that logs).

Example:
    >>> with StubSkaha() as server:
    ...     Session(url=server.url, token="t").fetch()
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PREFIX = "/skaha/v1/"

SESSIONS: list[dict[str, Any]] = [
    {
        "id": "abc12345",
        "userid": "alice",
        "image": "images.canfar.net/skaha/astroml:latest",
        "type": "notebook",
        "status": "Running",
        "name": "notes",
        "connectURL": "https://example.org/session/notebook/abc12345/lab?token=abc12345",
        "requestedGPUCores": "0",
        "isFixedResources": False,
    },
    {
        "id": "def67890",
        "userid": "alice",
        "image": "images.canfar.net/skaha/terminal:1.1.2",
        "type": "headless",
        "status": "Completed",
        "name": "batch-1",
        "connectURL": "",
        "requestedGPUCores": "0",
        "isFixedResources": False,
    },
]


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class StubSkaha:
    """Serve canned sessions; every request is recorded in ``seen``."""

    sessions: list[dict[str, Any]] = field(default_factory=lambda: [dict(s) for s in SESSIONS])
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: str, kind: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(
                    Seen(
                        self.command,
                        parts.path,
                        parse_qsl(parts.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                if not parts.path.startswith(PREFIX):
                    return self._reply(404, "<html>not found</html>", "text/html")
                rest = parts.path[len(PREFIX) :]
                query = dict(parse_qsl(parts.query))
                if rest == "session" and self.command == "GET":
                    if query.get("view") == "stats":
                        return self._reply(
                            200, json.dumps({"cores": {}, "ram": {}}), "application/json"
                        )
                    rows = [
                        s
                        for s in stub.sessions
                        if all(
                            s.get(k) == v
                            for k, v in (
                                ("type", query.get("type")),
                                ("status", query.get("status")),
                            )
                            if v
                        )
                    ]
                    return self._reply(200, json.dumps(rows), "application/json")
                if rest == "session" and self.command == "POST":
                    return self._reply(200, "new00001\n")
                if rest.startswith("session/"):
                    key = rest.split("/", 1)[1]
                    record = next((s for s in stub.sessions if s["id"] == key), None)
                    if self.command == "DELETE":
                        return self._reply(200, "")
                    if record is None:
                        return self._reply(404, f"session {key} not found\n")
                    if query.get("view") == "logs":
                        return self._reply(200, f"log line of {key}\n")
                    if query.get("view") == "events":
                        return self._reply(200, "TYPE  REASON  MESSAGE\n")
                    return self._reply(200, json.dumps(record), "application/json")
                return self._reply(404, "<html>not found</html>", "text/html")

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def __enter__(self) -> StubSkaha:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
