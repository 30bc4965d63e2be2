"""httpx transports of the session client: the connection pools and a borrowed transport.

Kept apart from :mod:`canfar_widgets.wire` (which decides *how a request is sent*: loop,
retries, deadlines, caps) because these decide *where bytes go*, and the first of them is a
performance work-around with an end date.

- :class:`KeepAliveTransport`: HTTP/1.1 keep-alive connections handed out one request at a
  time, with no pool scan (the wire's default).
- :class:`ShardedTransport`: several small httpx connection pools behind one transport (the
  previous default, kept for comparison in ``bench/bench_fanout.py``).
- :class:`BorrowedTransport`: a caller's transport (tests, benchmarks) that closing the
  client leaves open.

Example:
    >>> client = httpx.AsyncClient(transport=KeepAliveTransport(32))
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:  # pragma: no cover
    import httpcore

__all__ = [
    "KEEPALIVE_EXPIRY",
    "POOL_SIZE",
    "BorrowedTransport",
    "KeepAliveTransport",
    "ShardedTransport",
    "borrowed",
]

#: Seconds an idle connection is kept for reuse (httpx's default).
KEEPALIVE_EXPIRY = 5.0


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections, each serving one request at a time; no pool scan.

    Why not httpx's own pool: httpcore 1.0's pool re-examines every queued request against
    every connection, probing each idle connection's socket, whenever a request starts or
    ends, which made it most of our CPU per request (docs/performance.md). Here a request
    takes the most recently used idle connection of its origin (one socket probe, for that
    connection only), opens a new one while fewer than ``connections`` are open, or waits
    in line for one to come back. The HTTP itself (h11, TLS, timeouts) is httpcore's, one
    ``httpcore.AsyncHTTPConnection`` per socket, and its errors reach the caller as httpx's
    own exception types, so a failure before the request was sent stays a ``ConnectError``,
    ``ConnectTimeout`` or ``PoolTimeout`` and anything later stays a read, write or
    protocol error (what the wire's safe-create rules rely on).

    The TLS context is made only when the first ``https`` connection is opened (loading the
    CA bundle costs tens of milliseconds that a plain-HTTP client never needs), unless one
    is given.

    Args:
        connections: the most connections open at once, over all origins.
        verify: an ``ssl.SSLContext`` to use, ``True`` for the default CA bundle (made on
            first use), ``False`` to skip certificate checks.
        keepalive_expiry: seconds an idle connection is kept.

    Example:
        >>> async with httpx.AsyncClient(transport=KeepAliveTransport(32)) as client:
        ...     await client.get("http://127.0.0.1:8000/")
    """

    def __init__(
        self,
        connections: int,
        *,
        verify: ssl.SSLContext | bool = True,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
    ) -> None:
        self._limit = max(1, int(connections))
        self._verify = verify
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._open = 0  # connections open or being opened, idle ones included
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def open_connections(self) -> int:
        """Connections open now (busy or idle); for tests and diagnostics."""
        return self._open

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import httpcore
        from httpx._transports.default import AsyncResponseStream, map_httpcore_exceptions

        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(
                f"the URL {str(url)!r} has an unsupported scheme; only http and https work here"
            )
        port = url.port or (443 if scheme == b"https" else 80)
        key = (scheme, url.raw_host, port)
        timeouts = request.extensions.get("timeout", {})
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        while True:
            connection = await self._acquire(key, timeouts.get("pool"))
            try:
                with map_httpcore_exceptions():
                    response = await connection.handle_async_request(core_request)
            except httpcore.ConnectionNotAvailable:  # pragma: no cover - a race httpcore reports
                await self._discard(connection)
                continue
            except BaseException:
                await self._release(key, connection)
                raise
            break
        stream = _OnClose(response.stream, functools.partial(self._release, key, connection))
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=AsyncResponseStream(stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        for connection in idle:
            self._open -= 1
            await connection.aclose()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- connections ----------------------------------------------------------------------

    async def _acquire(
        self, key: tuple[bytes, bytes, int], pool_timeout: float | None
    ) -> httpcore.AsyncHTTPConnection:
        deadline = None if pool_timeout is None else time.monotonic() + pool_timeout
        while True:
            if self._closed:
                raise httpx.ConnectError("the transport is closed")  # nothing was sent
            stack = self._idle.get(key)
            while stack:
                connection = stack.pop()  # the most recent: likeliest still open
                if connection.is_available() and not connection.has_expired():
                    return connection
                await self._discard(connection)
            if self._open < self._limit:
                self._open += 1
                return self._connect(key)
            if not self._close_an_idle_connection():
                await self._wait(deadline)

    def _connect(self, key: tuple[bytes, bytes, int]) -> httpcore.AsyncHTTPConnection:
        import httpcore

        scheme, host, port = key
        if scheme == b"https" and self._ssl is None:
            # Made once, on the first https connection (the CA bundle is slow to load).
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return httpcore.AsyncHTTPConnection(
            origin=httpcore.Origin(scheme=scheme, host=host, port=port),
            ssl_context=self._ssl if scheme == b"https" else None,
            keepalive_expiry=self._keepalive_expiry,
        )

    def _close_an_idle_connection(self) -> bool:
        """At the limit with idle connections to other origins: make room by closing one."""
        for stack in self._idle.values():
            if stack:
                connection = stack.pop(0)  # the oldest
                self._open -= 1
                task = asyncio.ensure_future(connection.aclose())
                self._closing.add(task)  # held until done: a bare task may be collected
                task.add_done_callback(self._closed_one)
                return True
        return False

    def _closed_one(self, task: asyncio.Future[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled():
            task.exception()  # closing a socket may fail; nobody is waiting to hear it

    async def _wait(self, deadline: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if deadline is None:
                await waiter
            else:
                await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _release(
        self, key: tuple[bytes, bytes, int], connection: httpcore.AsyncHTTPConnection
    ) -> None:
        """A request is done with ``connection``: keep it for the next one, or drop it."""
        if not self._closed and connection.is_idle() and not connection.is_closed():
            self._idle.setdefault(key, []).append(connection)
            self._wake_one()
        else:
            await self._discard(connection)

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open -= 1
        self._wake_one()
        await connection.aclose()


class _OnClose(httpx.AsyncByteStream):
    """A response body that runs ``done()`` once it is closed (exactly once, error or not).

    Both transports hand back something when a body is closed: the connection
    (``KeepAliveTransport``) or a pool's busy count (``ShardedTransport``).
    """

    def __init__(self, inner: Any, done: Callable[[], Awaitable[None]]) -> None:
        self._inner, self._done = inner, done
        self._called = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._called:
                self._called = True
                await self._done()


# Connections per pool. httpcore 1.0's pool re-checks every queued request against every
# connection whenever a request starts or ends (O(requests x connections) per event), which
# costs ~3.3 ms of CPU per request at 32 connections against ~1 ms for canfar's httpcore2;
# pools of 8 keep each scan short. Measured in bench/bench_fanout.py, docs/performance.md.
POOL_SIZE = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small httpx connection pools behind one transport.

    When to remove it: this works around httpcore 1.0's pool re-scanning every queued
    request against every connection (docs/performance.md, "Fan-out through HTTP: httpcore
    1.0's pool"). Once the wire
    runs on a stack without that cost (httpcore2/httpx2, or an httpcore release whose pool
    assignment is no longer O(requests x connections)), one plain
    ``httpx.AsyncHTTPTransport(limits=...)`` does the same and this class should go; check
    with ``bench/bench_fanout.py`` that the per-request CPU stays ~1 ms at 32 connections.

    Each request goes to the least busy pool, counted until its response body is closed,
    so ``connections`` requests in flight spread evenly and no pool holds more than
    ``POOL_SIZE`` of them.

    Example:
        >>> client = httpx.AsyncClient(transport=ShardedTransport(32))
    """

    def __init__(self, connections: int, *, verify: ssl.SSLContext | bool = True) -> None:
        count = max(1, -(-int(connections) // POOL_SIZE))  # ceil
        size = max(1, -(-int(connections) // count))
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._pools = [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(count)]
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._busy.index(min(self._busy))
        self._busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        response.stream = _OnClose(response.stream, functools.partial(self._idle_one, index))
        return response

    async def _idle_one(self, index: int) -> None:
        self._busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class BorrowedTransport(httpx.AsyncBaseTransport):
    """A caller's async transport; closing the client leaves it open (the caller owns it)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


def borrowed(transport: httpx.AsyncBaseTransport | httpx.BaseTransport) -> httpx.AsyncBaseTransport:
    """Wrap a caller's async transport so that closing our client does not close it.

    Raises:
        TypeError: ``transport`` is not an async httpx transport (``httpx.MockTransport``
            is both kinds and works).
    """
    if isinstance(transport, httpx.AsyncBaseTransport):
        return BorrowedTransport(transport)
    raise TypeError(
        f"transport must be an async httpx transport (httpx.AsyncBaseTransport, such as "
        f"httpx.MockTransport), got {type(transport).__name__}"
    )
