"""Typed errors for the session client.

Why subclass httpx's exceptions: code written for the official client catches
``httpx.HTTPStatusError`` around ``fetch()``/``stats()``; ours keeps working unchanged while
new code can catch the narrower types below and read ``status_code`` and the server's
``message`` verbatim.

No message, ``str()`` or ``repr()`` here ever contains a token, a registry secret or a
query string (create parameters may carry user environment values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "APIError",
    "AnswerLost",
    "AnswerTooLarge",
    "AuthenticationError",
    "BadRequest",
    "CanfarError",
    "ConfigurationError",
    "DeadlineExceeded",
    "Forbidden",
    "LaunchWarning",
    "NotFound",
    "OutcomeUnknown",
    "ServerError",
    "ServiceUnavailable",
    "SessionRequestError",
    "SessionWarning",
    "TooManyRequests",
    "Unauthorized",
    "UnexpectedAnswer",
    "error_for_response",
    "session_request_error",
]


class CanfarError(Exception):
    """Base class of every error raised by canfar_widgets on purpose."""


class LaunchWarning(UserWarning):
    """A create launched fewer sessions than asked (``errors="ignore"``): how many, and why."""


class SessionWarning(UserWarning):
    """``errors="ignore"`` left sessions out of an answer (``info``, ``logs``, ``events``, ...).

    A warning, not a log line, so a notebook shows it once per call site (Jupyter's default
    filter) instead of a red stderr line every time; ``warnings.simplefilter("ignore",
    SessionWarning)`` silences it.

    Example:
        >>> session.info("nosuchid")
        []      # SessionWarning: info left out 1 session: nosuchid (not found)
    """


class ConfigurationError(CanfarError, ValueError):
    """The client cannot be configured: no server, an unreadable config file, a bad certificate.

    A ``ValueError`` too, as the official client raises ``ValueError`` for these.
    """


class AuthenticationError(CanfarError):
    """Credentials are missing, expired, or could not be refreshed (raised before any request)."""


class APIError(httpx.HTTPStatusError, CanfarError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status, e.g. ``400``.
        message: the server's text, verbatim but stripped (``"Missing parameter 'image'"``).
        method, path: what was asked, without the query string.

    Example:
        >>> try:
        ...     session.info("nope1234", errors="raise")
        ... except NotFound as err:
        ...     print(err.status_code, err.message)
        404 session nope1234 not found
    """

    status_code: int
    message: str

    def __init__(self, response: httpx.Response) -> None:
        request = response.request
        self.status_code = response.status_code
        self.message = _server_text(response)
        self.method = request.method
        self.path = request.url.path
        reason = response.reason_phrase or "error"
        text = (
            f"{self.status_code} {reason}: {self.message}"
            if self.message
            else f"{self.status_code} {reason}"
        )
        super().__init__(f"{text} ({self.method} {self.path})", request=request, response=response)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequest(APIError):
    """400: the server rejected the request (validation, session limit, unknown action...)."""


class Unauthorized(APIError):
    """401: the server did not accept the credentials."""


class Forbidden(APIError):
    """403: authenticated, but not allowed to use the platform."""


class NotFound(APIError):
    """404: no such session (or not yours)."""


class ServerError(APIError):
    """5xx: the platform failed; GET and DELETE are retried before this is raised."""


class ServiceUnavailable(ServerError):
    """503, with the server's ``Retry-After`` in seconds when it sent one."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.response.headers.get("retry-after"))


class TooManyRequests(APIError):
    """429: the platform (or a proxy in front of it) asks to slow down; nothing was done.

    Retried after ``Retry-After`` when that is short; raised at once when it is longer than
    the client waits, with ``retry_after`` saying when to come back.
    """

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.response.headers.get("retry-after"))


class UnexpectedAnswer(httpx.DecodingError, CanfarError):
    """A success status whose body is not what the endpoint returns (an HTML page from a
    proxy, an empty body, JSON of the wrong shape, nesting too deep to parse).

    An item failure like any HTTP error (``errors="ignore"`` leaves the item out).

    Example:
        >>> raise UnexpectedAnswer("GET /skaha/v1/session", "the answer is not JSON")
        Traceback (most recent call last):
        UnexpectedAnswer: unexpected answer from the platform to GET /skaha/v1/session: ...
    """

    def __init__(self, endpoint: str, problem: str) -> None:
        self.endpoint = endpoint
        self.problem = problem
        super().__init__(f"unexpected answer from the platform to {endpoint}: {problem}")


class AnswerTooLarge(UnexpectedAnswer):
    """The answer grew past the client's size cap; reading stopped there (memory stays bounded)."""

    def __init__(self, endpoint: str, limit: int) -> None:
        self.limit = limit
        super().__init__(endpoint, f"larger than {_size(limit)}, the most this client reads")


class DeadlineExceeded(httpx.TimeoutException, CanfarError):
    """One attempt took longer than its overall deadline (about 2.5x ``timeout``).

    httpx's own timeouts bound each network step; a server dripping a byte now and then
    never trips them, this does.
    """

    def __init__(self, endpoint: str, seconds: float) -> None:
        self.endpoint = endpoint
        self.seconds = seconds
        super().__init__(
            f"{endpoint} did not complete within {seconds:g} s (the overall deadline of one "
            "attempt, 2.5x the timeout); the platform is answering too slowly"
        )


class AnswerLost(httpx.TransportError, CanfarError):
    """One create POST whose answer never arrived: the session may or may not exist.

    Raised per replica (it is the ``error`` of a :class:`~canfar_widgets.sessions.LaunchOutcome`
    with ``unknown=True``) once looking for the session by its name found nothing.

    Attributes:
        replica, total: which replica (1-based) of how many.
        name: the name the session was asked for (what to look for in ``fetch()``).
        reason: why the answer was lost (the error class, e.g. ``ReadTimeout``).
    """

    def __init__(self, replica: int, total: int, name: str, reason: str) -> None:
        self.replica = replica
        self.total = total
        self.name = name
        self.reason = reason
        super().__init__(
            f"replica {replica}/{total} ({name!r}): the platform's answer was lost ({reason}) "
            f"and no new session named {name!r} was found; it may still have been created: "
            "check session.fetch() before launching it again"
        )


class SessionRequestError(CanfarError):
    """Some requests of a multi-item call failed under ``errors="raise"`` (as ``canfar``'s).

    Raised once every request has run. The instance is *also* an instance of the first
    failure's class (a ``NotFound``, a ``ConnectError``...), with its attributes, so code
    that catches those keeps working; build it with :func:`session_request_error`.

    Attributes:
        operation: the method, e.g. ``"info"``.
        results: what ``errors="ignore"`` would have returned (the partial results).
        errors: ``{session id or 1-based replica number: the original error}``.

    Example:
        >>> try:
        ...     session.info(["a1", "gone0000"], errors="raise")
        ... except SessionRequestError as err:
        ...     err.results, list(err.errors)
        ([{'id': 'a1', ...}], ['gone0000'])
    """

    operation: str
    results: Any
    errors: dict[str | int, BaseException]

    def __init__(self, operation: str, results: Any, errors: Mapping[Any, BaseException]) -> None:
        self._fill(operation, results, errors)
        Exception.__init__(self, self._message())

    def _fill(self, operation: str, results: Any, errors: Mapping[Any, BaseException]) -> None:
        self.operation = operation
        self.results = results
        self.errors = dict(errors)
        first = next(iter(self.errors.values()), None)
        if first is not None:
            self.__cause__ = first

    def _message(self) -> str:
        count = len(self.errors)
        items = ", ".join(f"{key}: {type(err).__name__}" for key, err in self.errors.items())
        text = f"{self.operation} encountered {count} failure{'s' if count != 1 else ''}: {items}"
        first = next(iter(self.errors.values()), None)
        if first is not None and str(first):
            text += f" (first: {first})"
        return text

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self._message()

    def __repr__(self) -> str:
        return f"SessionRequestError(operation={self.operation!r}, errors={sorted(map(str, self.errors))})"


class OutcomeUnknown(SessionRequestError):
    """A create under ``errors="raise"`` where some replica's answer was lost and the session
    could not be found by name: it may or may not exist. ``unknown`` lists those replicas.
    """

    @property
    def unknown(self) -> list[AnswerLost]:
        """The replicas whose outcome is unknown (their :class:`AnswerLost` errors)."""
        return [err for err in self.errors.values() if isinstance(err, AnswerLost)]

    def _message(self) -> str:
        lost = ", ".join(f"{err.replica} ({err.name!r})" for err in self.unknown)
        return (
            f"{self.operation}: the outcome of replica(s) {lost} is unknown: the platform's answer "
            "was lost and no session of that name was found, so it may still have been created; "
            "check session.fetch() before launching again. " + super()._message()
        )


_COMBINED: dict[
    tuple[type[SessionRequestError], type[BaseException]], type[SessionRequestError]
] = {}


def session_request_error(
    operation: str, results: Any, errors: Mapping[Any, BaseException]
) -> SessionRequestError:
    """The :class:`SessionRequestError` for these failures, also an instance of the first one's class.

    Why: ``canfar`` code catches ``SessionRequestError``; this package's own code (and older
    user code) catches the item's error (``NotFound``, ``httpx.HTTPStatusError``). One object
    satisfies both: a subclass of both classes carrying the first error's attributes.

    Example:
        >>> err = session_request_error("info", [], {"x1": not_found})
        >>> isinstance(err, SessionRequestError), isinstance(err, NotFound), err.status_code
        (True, True, 404)
    """
    items = dict(errors)
    base: type[SessionRequestError] = (
        OutcomeUnknown
        if any(isinstance(e, AnswerLost) for e in items.values())
        else SessionRequestError
    )
    first = next(iter(items.values()), None)
    cls: type[SessionRequestError] = base
    if first is not None and not isinstance(first, base):
        key = (base, type(first))
        cls = _COMBINED.get(key) or base
        if key not in _COMBINED:
            try:
                cls = type(base.__name__, (base, type(first)), {"__module__": __name__})
            except TypeError:  # an exception class that cannot be combined: the plain one
                cls = base
            _COMBINED[key] = cls
    err = cls.__new__(cls)
    if cls is not base and first is not None:
        err.__dict__.update(first.__dict__)  # status_code, message, request, response...
        err.__dict__.pop("__notes__", None)
    err._fill(operation, results, items)
    err.args = (err._message(),)
    for note in getattr(first, "__notes__", None) or []:
        add_note(err, note)
    return err


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``, also on Python 3.10 (where tracebacks do not show it)."""
    notes = getattr(error, "__notes__", None)
    error.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit} bytes"


def error_for_response(response: httpx.Response) -> APIError:
    """Build the typed error for an error response (status >= 400)."""
    code = response.status_code
    cls: type[APIError]
    if code == 400:
        cls = BadRequest
    elif code == 401:
        cls = Unauthorized
    elif code == 403:
        cls = Forbidden
    elif code == 404:
        cls = NotFound
    elif code == 429:
        cls = TooManyRequests
    elif code == 503:
        cls = ServiceUnavailable
    elif code >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(response)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/odd.

    Example:
        >>> parse_retry_after("30"), parse_retry_after("inf"), parse_retry_after("soon")
        (30.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf"/"nan" parse as floats but are no delay: an endless wait would stall a poller.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _server_text(response: httpx.Response) -> str:
    """The server's error text, trimmed; HTML error pages are reduced to nothing useful-length."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    text = text.strip()
    if text.lstrip().lower().startswith(("<!doctype", "<html")):
        return ""
    return text[:2000]


# -- error wording for people (the widgets' alerts and status lines) -----------------------
# Why here: the words for an error belong with the errors, so every widget (and the poller
# that reports failed polls) says the same thing. Self-contained block; nothing above uses it.

__all__ += ["describe_error", "is_auth_error"]


def describe_error(exc: BaseException) -> str:
    """A person-readable sentence for an exception, without tracebacks or secrets' context.

    Example:
        >>> describe_error(httpx.ConnectError("refused"))
        'cannot reach the platform (ConnectError)'
    """
    if isinstance(exc, APIError):
        return f"{exc.message or exc.response.reason_phrase} (HTTP {exc.status_code})"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from the platform"
    if isinstance(exc, AnswerLost):  # before TransportError: it is no connection problem
        return (
            f"the platform's answer was lost ({exc.reason}) and no session named {exc.name!r} "
            "was found: it may still have been created, so look before launching it again"
        )
    if isinstance(exc, UnexpectedAnswer):
        return str(exc)  # "unexpected answer from the platform to GET ...: <what it looked like>"
    if isinstance(exc, httpx.TimeoutException):
        return "the platform did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach the platform ({type(exc).__name__})"
    # The official client speaks httpx2, whose errors are not httpx's but look alike.
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} from the platform"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_auth_error(exc: BaseException | None) -> bool:
    """True for 401/403 (ours or the official client's): retrying cannot help until the
    person fixes their credentials.

    Example:
        >>> is_auth_error(AuthenticationError("token expired"))
        True
    """
    if exc is None:
        return False
    if isinstance(exc, (Unauthorized, Forbidden, AuthenticationError)):
        return True
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) in (401, 403)
