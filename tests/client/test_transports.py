"""KeepAliveTransport against real loopback servers: reuse, limits, timeouts, typed errors.

Every server here listens on 127.0.0.1 only. The errors matter beyond tidiness: the wire
may send a POST again only after ``ConnectError``/``ConnectTimeout``/``PoolTimeout`` (the
request never left), so a failure after sending must never surface as one of those.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from canfar_widgets.transports import KeepAliveTransport
from canfar_widgets.wire import NOT_SENT_ERRORS


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.peers: set[tuple[str, int]] = set()  # one per TCP connection seen
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.mode = "ok"  # ok | close (answer, then close the connection) | hang | drop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    server: _Server

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.peers.add(self.client_address)
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
        try:
            server.gate.wait(10)
            if server.mode == "hang":
                threading.Event().wait(2)
                return
            if server.mode == "drop":  # headers promise more than is sent, then the socket goes
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"partial")
                self.wfile.flush()
                self.close_connection = True
                return
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if server.mode == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.gate.set()
        httpd.shutdown()
        httpd.server_close()


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_sequential_requests_reuse_one_connection(server: _Server) -> None:
    async def main() -> int:
        transport = KeepAliveTransport(4)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(5):
                assert (await client.get(server.url)).text == "ok"
            return transport.open_connections

    assert _run(main()) == 1
    assert len(server.peers) == 1


def test_concurrent_requests_never_exceed_the_limit(server: _Server) -> None:
    server.gate.clear()

    async def main() -> list[str]:
        transport = KeepAliveTransport(3)
        async with httpx.AsyncClient(transport=transport) as client:
            tasks = [asyncio.create_task(client.get(server.url)) for _ in range(10)]
            while server.in_flight < 3:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # a fourth connection, if any, would show up now
            assert transport.open_connections == 3
            server.gate.set()
            answers = [a.text for a in await asyncio.gather(*tasks)]
            assert transport.open_connections == 3  # all idle again, kept for reuse
            return answers

    assert _run(main()) == ["ok"] * 10
    assert server.peak == 3
    assert len(server.peers) == 3


def test_waiting_longer_than_the_pool_timeout_is_a_pool_timeout(server: _Server) -> None:
    server.gate.clear()

    async def main() -> None:
        async with httpx.AsyncClient(transport=KeepAliveTransport(1)) as client:
            first = asyncio.create_task(client.get(server.url))
            while server.in_flight < 1:
                await asyncio.sleep(0.01)
            with pytest.raises(httpx.PoolTimeout) as caught:
                await client.get(server.url, timeout=httpx.Timeout(5, pool=0.05))
            assert isinstance(caught.value, NOT_SENT_ERRORS)
            server.gate.set()
            assert (await first).text == "ok"

    _run(main())
    assert len(server.peers) == 1  # the second request never reached the server


def test_a_refused_connection_is_a_connect_error_and_frees_its_slot() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> int:
        transport = KeepAliveTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):  # the slot came back: the second try does not wait forever
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"http://127.0.0.1:{port}/", timeout=2)
            return transport.open_connections

    assert _run(main()) == 0


def test_no_answer_is_a_read_timeout_not_a_not_sent_error(server: _Server) -> None:
    server.mode = "hang"

    async def main() -> int:
        transport = KeepAliveTransport(2)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ReadTimeout) as caught:
                await client.get(server.url, timeout=httpx.Timeout(5, read=0.2))
            assert not isinstance(caught.value, NOT_SENT_ERRORS)
            return transport.open_connections

    assert _run(main()) == 0  # a connection in an unknown state is not reused


def test_a_connection_dropped_mid_answer_is_a_sent_error(server: _Server) -> None:
    server.mode = "drop"

    async def main() -> None:
        async with httpx.AsyncClient(transport=KeepAliveTransport(2)) as client:
            with pytest.raises(httpx.TransportError) as caught:
                await client.get(server.url, timeout=5)
            assert isinstance(caught.value, (httpx.RemoteProtocolError, httpx.ReadError))
            assert not isinstance(caught.value, NOT_SENT_ERRORS)

    _run(main())


def test_a_connection_the_server_closed_is_replaced(server: _Server) -> None:
    server.mode = "close"

    async def main() -> None:
        transport = KeepAliveTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                assert (await client.get(server.url)).text == "ok"
            assert transport.open_connections <= 1

    _run(main())
    assert len(server.peers) == 3  # a fresh connection each time, no error


def test_an_unread_body_closed_early_gives_the_slot_back(server: _Server) -> None:
    async def main() -> int:
        transport = KeepAliveTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):  # with one slot, a leaked one would hang the second request
                async with client.stream("GET", server.url) as response:
                    assert response.status_code == 200
            return transport.open_connections

    assert _run(main()) <= 1


def test_close_closes_idle_connections_and_refuses_new_requests(server: _Server) -> None:
    async def main() -> None:
        transport = KeepAliveTransport(2)
        client = httpx.AsyncClient(transport=transport)
        await client.get(server.url)
        assert transport.open_connections == 1
        await client.aclose()
        assert transport.open_connections == 0
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(httpx.Request("GET", server.url))

    _run(main())


def test_plain_http_never_builds_a_tls_context(server: _Server) -> None:
    async def main() -> None:
        transport = KeepAliveTransport(2)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(server.url)
        assert transport._ssl is None

    _run(main())


def test_an_unsupported_scheme_is_refused_before_connecting() -> None:
    async def main() -> None:
        transport = KeepAliveTransport(2)
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))
        assert transport.open_connections == 0

    _run(main())


def test_a_tls_handshake_failure_is_a_connect_error(server: _Server) -> None:
    """An https URL on a plain-HTTP server: the handshake fails before anything is sent."""
    https_url = server.url.replace("http://", "https://")

    async def main() -> int:
        transport = KeepAliveTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(https_url, timeout=5)
            assert transport._ssl is not None  # made for the first https connection
            return transport.open_connections

    assert _run(main()) == 0


def test_at_the_limit_an_idle_connection_to_another_origin_makes_room(server: _Server) -> None:
    other = _Server()
    threading.Thread(target=other.serve_forever, daemon=True).start()

    async def main() -> int:
        transport = KeepAliveTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(server.url)).text == "ok"
            assert (await client.get(other.url, timeout=httpx.Timeout(5, pool=2))).text == "ok"
            return transport.open_connections

    try:
        assert _run(main()) == 1
    finally:
        other.shutdown()
        other.server_close()
    assert len(server.peers) == 1 and len(other.peers) == 1
