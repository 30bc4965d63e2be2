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
  ``retry_after``, is raised at once for the caller to come back later).
- POST (a create, a renew) is retried only when the request provably never reached the
  server: connection refused, connect timeout, pool timeout, and 429 (the server refused
  it without acting). Any other failure is raised, and for a create the session layer
  looks for the session by name instead of sending it again (see
  :meth:`canfar_widgets.sessions.AsyncSession.launch_replicas`).
- Each attempt has an overall deadline of ``DEADLINE_FACTOR`` x ``timeout`` (httpx's
  timeouts bound each network step only, so a server dripping a byte every few seconds
  would never trip them): :class:`~canfar_widgets.errors.DeadlineExceeded` names the endpoint.
- Answers are read with a size cap (``MAX_ANSWER``, 64 MiB): a bigger one raises
  :class:`~canfar_widgets.errors.AnswerTooLarge` and memory stays bounded. Text answers
  (logs) may instead be cut to a head or a tail (:meth:`Wire.get_text`).
- Error responses raise :func:`canfar_widgets.errors.error_for_response` (typed, server
  text verbatim).
- Logs name the method, the path and the status only: never headers, bodies or query
  strings. Create parameters travel in a form body, never in the URL, so user environment
  values cannot leak through any URL log (httpx's own included).

Example:
    >>> from canfar_widgets.settings import resolve_settings
    >>> wire = Wire(resolve_settings(url="https://ws-uv.canfar.net/skaha/v1", token="..."))
    >>> response = get_runner().run(wire.get("session", params={"type": "headless"}))
    >>> response.json()
    [...]
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import random
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import httpx

from canfar_widgets.errors import (
    AnswerTooLarge,
    AuthenticationError,
    DeadlineExceeded,
    add_note,
    error_for_response,
    parse_retry_after,
)
from canfar_widgets.runner import Runner, get_runner
from canfar_widgets.transports import KeepAliveTransport, borrowed

if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.models import CreateRequest
    from canfar_widgets.settings import ClientSettings

__all__ = [
    "DEFAULT_RETRY",
    "MAX_ANSWER",
    "NO_RETRY",
    "FormData",
    "Retry",
    "TextAnswer",
    "Wire",
    "create_form",
]

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
# Failures after which the request provably never reached the server (no connection was
# made): the only ones after which a POST may be sent again.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# 429 Too Many Requests: refused before any work, for every method (a create too).
REFUSED_STATUSES = frozenset({429})

#: The largest answer read (JSON lists and records, event tables): 64 MiB. A listing of
#: 10,000 sessions is ~10 MiB; anything larger is not an answer of this API.
MAX_ANSWER = 64 * 2**20
#: Each attempt must finish within this many times the client's ``timeout``.
DEADLINE_FACTOR = 2.5


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
        transport: an async httpx transport to use instead of the network (tests,
            benchmarks; ``httpx.MockTransport`` works). The caller keeps ownership: closing
            the ``Wire`` does not close it.
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
        self._transport = borrowed(transport) if transport is not None else None
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

        The body is read whole, up to :data:`MAX_ANSWER` (else ``AnswerTooLarge``).

        Example:
            >>> (await wire.get("session", params={"view": "stats"})).json()
        """
        return await _on_runner(self._send("GET", path, params=params))

    async def get_text(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        limit: int,
        tail: bool = False,
        mark: str = "",
    ) -> TextAnswer:
        """GET a text answer of any size, keeping at most ``limit`` bytes of it.

        ``tail=False`` keeps the first ``limit`` bytes and stops reading there, decoding as
        it reads into one growing string (a log costs about its own size in memory, not
        bytes plus text); ``mark`` is appended when something was cut. ``tail=True`` reads
        everything but keeps only the last ``limit`` bytes (memory stays bounded either
        way). ``truncated`` says whether anything was dropped.

        Example:
            >>> answer = await wire.get_text("session/abc?view=logs", limit=2**20, tail=True)
            >>> answer.truncated, answer.text[-20:]
        """
        reader: _Reader = _TextReader(limit, tail) if tail else _HeadText(limit, mark)
        response = await _on_runner(self._send("GET", path, params=params, read=reader))
        truncated = bool(response.extensions.get(_TRUNCATED))
        if tail:
            return TextAnswer(response.text, truncated)
        return TextAnswer(response.extensions.pop(_TEXT), truncated)

    async def post(
        self,
        path: str,
        data: FormData | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """POST a form body (``application/x-www-form-urlencoded``) to ``path``.

        Retried only when it provably never reached the server (connection refused, connect
        or pool timeout) or was refused with 429; never after it may have been received.

        ``data`` may be a mapping or a sequence of pairs (order kept, names may repeat).
        ``headers`` are added to this request only (say, one-off registry credentials).
        ``on_send`` is called each time the request is about to leave (after waiting for a
        free connection slot), so a caller knows it may have reached the server.

        Example:
            >>> await wire.post("session/abc12345", [("action", "renew")])
        """
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data or [])
        # Encoded here rather than by httpx so that repeated names keep their exact order.
        body = urlencode(pairs).encode("ascii")
        extra = {**(headers or {}), "Content-Type": FORM_CONTENT_TYPE}
        return await _on_runner(
            self._send("POST", path, content=body, headers=extra, on_send=on_send)
        )

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
        # freeze every widget on the runner loop, so it happens in a worker thread; the CA
        # bundle only for an https URL (a plain-http client never needs it).
        settings = self.settings
        https = str(settings.base_url).startswith("https:") and settings.verify is True
        tls: ssl.SSLContext | None = _default_tls
        if https and tls is None:
            tls = await asyncio.to_thread(_prepare_tls)
        elif "httpcore" not in sys.modules:
            await asyncio.to_thread(_import_httpcore)
        if self._client is not None and self._slots is not None and self._loop is loop:
            return self._client, self._slots  # a concurrent request built it meanwhile
        self._forget_client()  # one of a dead loop (runner restarted) cannot be closed: drop it
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
            verify: ssl.SSLContext | bool = settings.verify
            if verify is True and tls is not None:
                verify = tls
            kwargs["verify"] = verify
            kwargs["transport"] = KeepAliveTransport(concurrency, verify=verify)
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
        read: _Reader | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> httpx.Response:
        if self.settings.login_problem is not None:
            raise AuthenticationError(self.settings.login_problem)  # before any connection
        client, slots = await self._ensure_client()
        # Per-call headers must win over what the client's auth flow sets (a one-off
        # registry credential over the configured one), so they are applied after it.
        auth: Any = httpx.USE_CLIENT_DEFAULT
        if headers and client.auth is not None:
            auth = _AfterAuth(client.auth, headers)
        idempotent = method in IDEMPOTENT
        policy = self.retry
        retry_errors = RETRY_ERRORS if idempotent else NOT_SENT_ERRORS
        retry_statuses = (RETRY_STATUSES | REFUSED_STATUSES) if idempotent else REFUSED_STATUSES
        attempts = max(1, policy.attempts)
        reader = read or _read_capped
        deadline = DEADLINE_FACTOR * float(self.settings.timeout)
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            failure: BaseException
            try:
                async with slots:
                    if on_send is not None:
                        on_send()
                    request = client.build_request(
                        method, path, params=params, content=content, headers=headers
                    )
                    response = await _within(
                        deadline, self._exchange(client, request, auth, reader), method, request
                    )
            except retry_errors as err:
                failure, retry_after, what = err, None, type(err).__name__
            else:
                log.debug("%s %s -> %d", method, response.request.url.path, response.status_code)
                if response.is_success:
                    return response
                failure = error_for_response(response)
                if response.status_code not in retry_statuses:
                    raise failure
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                what = f"HTTP {response.status_code}"
            if attempt >= attempts:
                raise failure
            if retry_after is not None and retry_after > policy.max_retry_after:
                # Asking again before the server's Retry-After would not honour it, and
                # waiting that long here would freeze the caller: hand it the error.
                add_note(
                    failure,
                    f"the platform asks to wait {retry_after:g} s before trying again, "
                    f"longer than the {policy.max_retry_after:g} s this client waits: "
                    "try again later",
                )
                raise failure
            delay = policy.delay(attempt, retry_after)
            if slept + delay > policy.budget:
                raise failure
            log.info(
                "%s %s failed (%s); retry %d/%d in %.2f s",
                method,
                _safe_path(client, path),
                what,
                attempt,
                attempts - 1,
                delay,
            )
            await self._sleep(delay)
            slept += delay

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        auth: Any,
        reader: _Reader,
    ) -> httpx.Response:
        """Send ``request`` and read its body with ``reader`` (capped), then close it."""
        response = await client.send(request, auth=auth, stream=True)
        try:
            if response.is_success:
                await reader(response)
            else:  # error texts are short; a huge error page is cut, not read whole
                await _TextReader(64 * 1024, tail=False)(response)
        finally:
            await response.aclose()
        return response

    async def _sleep(self, seconds: float) -> None:
        # A method so tests can record the delays instead of sleeping them.
        await asyncio.sleep(seconds)

    async def _aclose(self) -> None:
        client, loop = self._forget_client()
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()


# -- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextAnswer:
    """A text answer read by :meth:`Wire.get_text`: the text kept and whether some was dropped."""

    text: str
    truncated: bool


_Reader = Callable[[httpx.Response], Awaitable[None]]
# Set in a response's extensions by a reader that dropped part of the body.
_TRUNCATED = "canfar_widgets.truncated"
# Where _HeadText leaves the decoded text (the response keeps no bytes of it).
_TEXT = "canfar_widgets.text"


def _endpoint(method: str, request: httpx.Request) -> str:
    return f"{method} {request.url.path}"  # never the query string


async def _within(
    seconds: float, work: Coroutine[Any, Any, T], method: str, request: httpx.Request
) -> T:
    """Await ``work`` for at most ``seconds``; then ``DeadlineExceeded`` naming the endpoint."""
    try:
        if sys.version_info >= (3, 11):  # no extra task per request
            async with asyncio.timeout(seconds):
                return await work
        return await asyncio.wait_for(work, seconds)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(_endpoint(method, request), seconds) from None


async def _read_capped(response: httpx.Response, limit: int = MAX_ANSWER) -> None:
    """Read the whole (decoded) body, refusing to hold more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(_endpoint(response.request.method, response.request), limit)
        chunks.append(chunk)
    _keep(response, b"".join(chunks))


class _TextReader:
    """Keep the first (or, ``tail=True``, the last) ``limit`` bytes of a body."""

    def __init__(self, limit: int, tail: bool) -> None:
        self.limit = max(0, int(limit))
        self.tail = tail

    async def __call__(self, response: httpx.Response) -> None:
        kept = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            kept += chunk
            if len(kept) > self.limit:
                truncated = True
                if not self.tail:
                    del kept[self.limit :]
                    break  # stop reading: the rest is never downloaded
                del kept[: len(kept) - self.limit]
        body = bytes(kept)
        if truncated:
            body = _whole_characters(body, self.tail)
            response.extensions[_TRUNCATED] = True
        _keep(response, body)


class _HeadText:
    """Decode the first ``limit`` bytes of a body as they arrive, into one growing str.

    Why not bytes then ``response.text``: that holds the body as bytes and as text at once
    (and httpx joins the text once more), ~2.5x a log just under the cap. Here the peak is
    the text plus one chunk. The result is the same as decoding the kept bytes whole:
    httpx's decoder (``response.encoding``, invalid bytes replaced), and a character cut in
    two by the limit dropped as :func:`_whole_characters` does; the text is put in the
    response's extensions under ``_TEXT``.
    """

    def __init__(self, limit: int, mark: str = "") -> None:
        self.limit = max(0, int(limit))
        self.mark = mark

    async def __call__(self, response: httpx.Response) -> None:
        text = ""
        async for piece in self._pieces(response):
            # CPython grows a str that has one reference in place (no copy; a test checks
            # the peak), so ``text`` must stay the only reference until the loop ends.
            text += piece
        response.extensions[_TEXT] = text

    async def _pieces(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        decoder = codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")
        # The last 3 bytes read wait before decoding: a cut at the limit may drop them.
        pending = b""
        size = 0
        async for chunk in response.aiter_bytes():
            room = self.limit - size
            size += len(chunk)
            if size > self.limit:
                response.extensions[_TRUNCATED] = True
                yield decoder.decode(_whole_characters(pending + chunk[:room], tail=False), True)
                yield self.mark
                return  # stop reading: the rest is never downloaded
            pending += chunk
            if len(pending) > 3:
                yield decoder.decode(pending[:-3])
                pending = pending[-3:]
        yield decoder.decode(pending, True)


def _whole_characters(body: bytes, tail: bool) -> bytes:
    """Drop a UTF-8 character cut in two at the edge where the body was truncated."""
    if tail:
        start = 0
        while start < min(4, len(body)) and (body[start] & 0xC0) == 0x80:
            start += 1
        return body[start:]
    end = len(body)
    for back in range(1, min(4, end) + 1):
        byte = body[end - back]
        if byte & 0xC0 != 0x80:  # the lead byte of the last character
            need = (
                1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            )
            return body if back >= need else body[: end - back]
    return body


def _keep(response: httpx.Response, body: bytes) -> None:
    # What httpx's own Response.aread() does once the stream is consumed; done by hand
    # here so that reading stops at the cap.
    response._content = body


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


def _import_httpcore() -> None:
    import httpcore  # noqa: F401  (what httpx would import lazily on the loop)


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
