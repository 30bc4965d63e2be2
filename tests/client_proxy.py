"""A loopback HTTP proxy that loses answers on purpose (for the safe-create tests).

``FaultyProxy(upstream)`` forwards every request to ``upstream`` (a LocalPlatform's URL) and
relays the answer, except for the next ``fault.times`` requests matching ``fault.method`` and
``fault.path``: those are forwarded (so the platform acts) and then

- ``"reset"``: the client's connection is reset without an answer (a dropped connection);
- ``"stall"``: no answer for ``stall`` seconds, then the connection is closed (a read timeout);
- ``"html"``: a 200 with an HTML page instead of the platform's answer (a confused proxy);
- ``"refuse"`` (not forwarded): 429 with ``Retry-After: 0`` (the request had no effect).

``forwarded`` counts what reached the platform, per ``(method, path)``, so a test can prove
a create was never sent twice. Only ever binds 127.0.0.1.

Example:
    >>> with running_platform() as platform, FaultyProxy(platform.base) as proxy:
    ...     proxy.fail("POST", "/skaha/v1/session", "reset")
    ...     Session(url=proxy.url + "/skaha/v1", token=platform.token).create(...)
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Fault:
    method: str
    path: str
    mode: str
    times: int = 1
    stall: float = 5.0


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self.upstream = (parts.hostname, parts.port or 80)
        self.forwarded: Counter[tuple[str, str]] = Counter()
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                fault = proxy._take(self.command, path)
                if fault is not None and fault.mode == "refuse":
                    self._answer(429, {"Retry-After": "0"}, b"slow down\n")
                    return
                status, headers, payload = proxy._forward(
                    self.command, self.path, self.headers, body
                )
                if fault is None:
                    self._answer(status, headers, payload)
                elif fault.mode == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                elif fault.mode == "stall":
                    time.sleep(fault.stall)
                    self.close_connection = True
                elif fault.mode == "html":
                    self._answer(
                        200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"
                    )

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "date",
                        "server",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail(self, method: str, path: str, mode: str, times: int = 1, stall: float = 5.0) -> None:
        with self._lock:
            self.faults.append(Fault(method, path, mode, times, stall))

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _forward(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.forwarded[(method, target.split("?", 1)[0])] += 1
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
