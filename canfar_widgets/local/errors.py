"""The one exception the platform's request code raises to produce an error answer.

Example:
    >>> err = PlatformError(400, "Missing parameter 'image'")
    >>> err.body()
    b"Missing parameter 'image'\\n"
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PlatformError", "bad_request", "not_found"]


class PlatformError(Exception):
    """An error answer: ``text/plain`` body = message (+ ``\\n`` unless ``newline=False``).

    cadc-rest actions end their messages with a newline; errors raised before the action
    (authentication) do not.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        newline: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.newline = newline

    def body(self) -> bytes:
        return (self.message + ("\n" if self.newline else "")).encode()


def bad_request(message: str) -> PlatformError:
    return PlatformError(400, message)


def not_found(message: str) -> PlatformError:
    return PlatformError(404, message)
