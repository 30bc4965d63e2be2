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
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequest",
    "CanfarError",
    "ConfigurationError",
    "Forbidden",
    "NotFound",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "error_for_response",
]


class CanfarError(Exception):
    """Base class of every error raised by canfar_widgets on purpose."""


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
        text = f"{self.status_code} {reason}: {self.message}" if self.message else f"{self.status_code} {reason}"
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
