"""The one place HTTP happens: ``Wire`` owns the ``httpx.AsyncClient`` of a session.

Why a separate layer: the session methods only decide *what* to ask; how a request is
sent (on which loop, retried or not, how failures become typed errors, what may be
logged) is decided here once.

- The client is created lazily **on the runner loop** (:func:`canfar_widgets.runner.get_runner`)
  and only ever used there. Every public coroutine of ``Wire`` hops to that loop itself, so
  a ``Wire`` may be awaited from any loop.
- At most ``concurrency`` requests are in flight per ``Wire`` (a semaphore, plus the
  connection-pool limit), whatever number of calls share it.
- GET and DELETE are retried on connection failures and 502/503/504 with exponential
  backoff and jitter, honouring ``Retry-After``: never asked again sooner than it says, and
  not retried at all when it asks for longer than ``max_retry_after`` (the error, with its
  ``retry_after``, is raised at once for the caller to come back later). POST is never
  retried: a retried create could launch a second session.
- Error responses raise :func:`canfar_widgets.errors.error_for_response` (typed, server
  text verbatim).
- Logs name the method, the path and the status only: never headers, bodies or query
  strings. Create parameters travel in a form body, never in the URL, so user environment
  values cannot leak through any URL log (httpx's own included).

Example:
    >>> from canfar_widgets.config import resolve_settings
    >>> wire = Wire(resolve_settings(url="https://ws-uv.canfar.net/skaha/v1", token="..."))
    >>> response = get_runner().run(wire.get("session", params={"type": "headless"}))
    >>> response.json()
    [...]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import httpx

from canfar_widgets.errors import error_for_response, parse_retry_after
from canfar_widgets.runner import Runner, get_runner

if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.config import ClientSettings
    from canfar_widgets.models import CreateRequest

__all__ = ["DEFAULT_RETRY", "NO_RETRY", "FormData", "Retry", "Wire", "create_form"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A form body: pairs keep their order and may repeat a name (``env`` does).
FormData = Sequence[tuple[str, str]] | Mapping[str, str]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# Statuses that mean "the platform is briefly unavailable", not "your request is wrong".
RETRY_STATUSES = frozenset({502, 503, 504})
# Failures after which the request certainly or very probably did not take effect. Read
# timeouts are not here: the server may still be working, and waiting again 3x30 s in a
# notebook helps nobody.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)
IDEMPOTENT = frozenset({"GET", "DELETE"})


@dataclass(frozen=True)
class Retry:
    """How idempotent requests are retried.

    Attributes:
        attempts: total tries, the first included.
        backoff: the first delay in seconds; it doubles each retry, up to ``max_backoff``,
            and a random half of it is jitter (so many clients do not retry in step).
        max_backoff: the largest computed delay.
        max_retry_after: the longest ``Retry-After`` this call waits out. A server asking
            for longer gets no early retry: the error is raised at once (a
            :class:`~canfar_widgets.errors.ServiceUnavailable` carries ``retry_after``).
        budget: the most time slept over all retries of one request; a retry that would
            exceed it is not made and the last failure is raised instead.

    Example:
        >>> Retry(attempts=2, backoff=0.01).delay(1, None) <= 0.01
        True
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 5.0
    max_retry_after: float = 10.0
    budget: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2


DEFAULT_RETRY = Retry()
NO_RETRY = Retry(attempts=1)


def create_form(request: CreateRequest, replica: int, total: int) -> list[tuple[str, str]]:
    """The form fields of one create POST, in the official client's exact order.

    ``name, image, cores?, ram?, type, gpus?, cmd?, args?, env=K=V...`` with
    ``REPLICA_ID``/``REPLICA_COUNT`` appended to the environment and ``-<replica>``
    appended to the name when ``total > 1``.

    Example:
        >>> create_form(CreateRequest(name="job", image="skaha/terminal:1.1.2"), 1, 1)
        [('name', 'job'), ('image', 'images.canfar.net/skaha/terminal:1.1.2'),
         ('type', 'headless'), ('env', 'REPLICA_ID=1'), ('env', 'REPLICA_COUNT=1')]
    """
    return [(str(key), str(value)) for key, value in request.form_fields(replica, total)]


class Wire:
    """The HTTP connection of one session client.

    Args:
        settings: resolved client settings (base URL, headers, auth, TLS, timeout, concurrency).
        transport: an httpx transport to use instead of the network (tests, benchmarks). A
            sync ``httpx.BaseTransport`` works too; it is called in a worker thread. The
            caller keeps ownership: closing the ``Wire`` does not close it.
        retry: the retry policy of GET and DELETE (default :data:`DEFAULT_RETRY`).

    Example:
        >>> wire = Wire(settings)
        >>> await wire.delete("session/abc12345")
        <Response [200 OK]>
        >>> await wire.aclose()
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | httpx.BaseTransport | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else DEFAULT_RETRY
        self._transport = _borrowed(transport) if transport is not None else None
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        # The loop the client belongs to; a new runner (after shutdown or fork) gets a new client.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finalizer: weakref.finalize | None = None

    def __repr__(self) -> str:
        return f"Wire(base_url={str(self.settings.base_url)!r}, auth={self.settings.mode!r})"

    @property
    def base_url(self) -> str:
        return str(self.settings.base_url)

    # -- requests -------------------------------------------------------------------------

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        """GET ``path`` (relative to the base URL); retried on transient failures.

        Example:
            >>> (await wire.get("session", params={"view": "stats"})).json()
        """
        return await _on_runner(self._send("GET", path, params=params))

    async def post(
        self, path: str, data: FormData | None = None, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST a form body (``application/x-www-form-urlencoded``) to ``path``; never retried.

        ``data`` may be a mapping or a sequence of pairs (order kept, names may repeat).
        ``headers`` are added to this request only (say, one-off registry credentials).

        Example:
            >>> await wire.post("session/abc12345", [("action", "renew")])
        """
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data or [])
        # Encoded here rather than by httpx so that repeated names keep their exact order.
        body = urlencode(pairs).encode("ascii")
        extra = {**(headers or {}), "Content-Type": FORM_CONTENT_TYPE}
        return await _on_runner(self._send("POST", path, content=body, headers=extra))

    async def delete(self, path: str) -> httpx.Response:
        """DELETE ``path``; retried on transient failures (deleting twice is harmless)."""
        return await _on_runner(self._send("DELETE", path))

    async def aclose(self) -> None:
        """Close the HTTP client (on the runner loop). The next request opens a new one."""
        await _on_runner(self._aclose())

    def close(self) -> None:
        """Close from sync code: waits on the runner, or schedules it from the runner thread."""
        runner = get_runner()
        if runner.in_runner_thread():
            runner.spawn(self._aclose(), name="canfar-widgets:close-wire")
        else:
            runner.run(self._aclose())

    # -- runner side ----------------------------------------------------------------------

    async def _ensure_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._slots is not None and self._loop is loop:
            return self._client, self._slots
        # Slow one-off work (importing httpcore, loading CA certificates: ~0.1 s each) would
        # freeze every widget on the runner loop, so it happens in a worker thread.
        tls = _default_tls or await asyncio.to_thread(_prepare_tls)
        if self._client is not None and self._slots is not None and self._loop is loop:
            return self._client, self._slots  # a concurrent request built it meanwhile
        self._forget_client()  # one of a dead loop (runner restarted) cannot be closed: drop it
        settings = self.settings
        concurrency = int(settings.concurrency)
        kwargs: dict[str, Any] = {
            "base_url": str(settings.base_url),
            "headers": dict(settings.headers or {}),
            "auth": settings.auth,
            # Pool waits are bounded by our own semaphore, so only the network may time out.
            "timeout": httpx.Timeout(float(settings.timeout), pool=None),
            "limits": httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            ),
        }
        if self._transport is not None:
            kwargs["transport"] = self._transport
        else:
            verify = tls if settings.verify is True else settings.verify
            kwargs["verify"] = verify
            kwargs["transport"] = ShardedTransport(concurrency, verify=verify)
        client = httpx.AsyncClient(**kwargs)
        self._client, self._slots, self._loop = client, asyncio.Semaphore(concurrency), loop
        # Closed on the runner if this Wire is dropped unclosed; at exit the runner's
        # shutdown closes the live ones (see _track), hence atexit=False.
        self._finalizer = weakref.finalize(self, _close_abandoned, client, loop)
        self._finalizer.atexit = False
        _track(self)
        return client, self._slots

    def _forget_client(self) -> tuple[httpx.AsyncClient | None, asyncio.AbstractEventLoop | None]:
        client, loop = self._client, self._loop
        self._client = self._slots = self._loop = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return client, loop

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        client, slots = await self._ensure_client()
        # Per-call headers must win over what the client's auth flow sets (a one-off
        # registry credential over the configured one), so they are applied after it.
        auth: Any = httpx.USE_CLIENT_DEFAULT
        if headers and client.auth is not None:
            auth = _AfterAuth(client.auth, headers)
        policy = self.retry if method in IDEMPOTENT else NO_RETRY
        attempts = max(1, policy.attempts)
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            failure: BaseException
            try:
                async with slots:
                    response = await client.request(
                        method, path, params=params, content=content, headers=headers, auth=auth
                    )
            except RETRY_ERRORS as err:
                failure, retry_after, what = err, None, type(err).__name__
            else:
                log.debug("%s %s -> %d", method, response.request.url.path, response.status_code)
                if response.is_success:
                    return response
                failure = error_for_response(response)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                what = f"HTTP {response.status_code}"
            if attempt >= attempts:
                raise failure
            if retry_after is not None and retry_after > policy.max_retry_after:
                # Asking again before the server's Retry-After would not honour it, and
                # waiting that long here would freeze the caller: hand it the error.
                raise failure
            delay = policy.delay(attempt, retry_after)
            if slept + delay > policy.budget:
                raise failure
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2f s",
                method, _safe_path(client, path), what, attempt, attempts - 1, delay,
            )
            await self._sleep(delay)
            slept += delay

    async def _sleep(self, seconds: float) -> None:
        # A method so tests can record the delays instead of sleeping them.
        await asyncio.sleep(seconds)

    async def _aclose(self) -> None:
        client, loop = self._forget_client()
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()


# -- helpers ---------------------------------------------------------------------------------


async def _on_runner(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the runner loop (directly when already there)."""
    return await get_runner().arun(coro)


def _safe_path(client: httpx.AsyncClient, path: str) -> str:
    """The absolute path of ``path`` for a log line: no scheme, host or query string."""
    try:
        return client.base_url.join(path).path
    except Exception:  # a log line is never worth an exception
        return path.split("?", 1)[0]


_default_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def _prepare_tls() -> ssl.SSLContext:
    """The default TLS context, built once per process (and httpcore imported), off-loop."""
    global _default_tls
    with _tls_lock:
        if _default_tls is None:
            import httpcore  # noqa: F401  (what httpx would import lazily on the loop)

            _default_tls = httpx.create_ssl_context()
        return _default_tls


# Wires whose client is open, per runner, so the runner's shutdown closes them (a client
# left open until its loop is closed leaves sockets for the garbage collector to complain
# about). Weak on both sides: tracking must not keep a session or a dead runner alive.
_open: weakref.WeakKeyDictionary[Runner, weakref.WeakSet[Wire]] = weakref.WeakKeyDictionary()
_open_lock = threading.Lock()
# Closing tasks of clients whose Wire was garbage-collected (only touched on loop threads).
_closing: set[asyncio.Task[None]] = set()


def _track(wire: Wire) -> None:
    runner = get_runner()
    with _open_lock:
        wires = _open.get(runner)
        if wires is None:
            wires = _open[runner] = weakref.WeakSet()
            runner_ref = weakref.ref(runner)

            async def _close_all() -> None:
                owner = runner_ref()
                for item in list(_open.get(owner, ())) if owner is not None else []:
                    await item._aclose()
                await asyncio.sleep(0)  # let just-scheduled _close_abandoned calls start
                loop = asyncio.get_running_loop()
                pending = [task for task in _closing if task.get_loop() is loop]
                if pending:
                    await asyncio.wait(pending)

            runner.on_shutdown(_close_all)
        wires.add(wire)


def _close_abandoned(client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
    """A Wire was dropped unclosed: close its client on its own loop (from any thread)."""

    def start() -> None:
        task = loop.create_task(client.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    with contextlib.suppress(RuntimeError):  # that loop is closed: nothing left to close
        loop.call_soon_threadsafe(start)


class _AfterAuth(httpx.Auth):
    """Run the client's auth flow, then set ``headers`` on the request it was given."""

    def __init__(self, inner: httpx.Auth, headers: Mapping[str, str]) -> None:
        self.inner = inner
        self.headers = dict(headers)
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
        except StopAsyncIteration:
            return
        while True:
            if outgoing is request:  # not, say, a token refresh sent elsewhere
                outgoing.headers.update(self.headers)
            response = yield outgoing
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return

    def __repr__(self) -> str:  # never the header values
        return f"_AfterAuth({self.inner!r}, headers={sorted(self.headers)})"


# Connections per pool. httpcore 1.0's pool re-checks every queued request against every
# connection whenever a request starts or ends (O(requests x connections) per event), which
# costs ~3.3 ms of CPU per request at 32 connections against ~1 ms for canfar's httpcore2;
# pools of 8 keep each scan short. Measured in bench/bench_fanout.py, docs/performance.md.
POOL_SIZE = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small httpx connection pools behind one transport.

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
        response.stream = _ReleasingStream(response.stream, self._busy, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that marks its pool less busy once closed (exactly once)."""

    def __init__(self, inner: Any, busy: list[int], index: int) -> None:
        self._inner, self._busy, self._index = inner, busy, index
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._released:
                self._released = True
                self._busy[self._index] -= 1


class _BorrowedTransport(httpx.AsyncBaseTransport):
    """A caller's async transport; closing the client leaves it open (the caller owns it)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class _ThreadedTransport(httpx.AsyncBaseTransport):
    """A caller's sync transport, called in a worker thread so the runner loop stays free."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await asyncio.to_thread(self._roundtrip, request)

    def _roundtrip(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self._transport.handle_request(request)
        stream = response.stream
        # The raw bytes from the stream itself (the client decodes any content-encoding once).
        if isinstance(stream, httpx.SyncByteStream):
            try:
                body = b"".join(stream)
            finally:
                stream.close()
        else:
            body = response.read()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        pass


def _borrowed(transport: httpx.AsyncBaseTransport | httpx.BaseTransport) -> httpx.AsyncBaseTransport:
    # MockTransport is both kinds; prefer its async side.
    if isinstance(transport, httpx.AsyncBaseTransport):
        return _BorrowedTransport(transport)
    if isinstance(transport, httpx.BaseTransport):
        return _ThreadedTransport(transport)
    raise TypeError(f"expected an httpx transport, got {type(transport).__name__}")
