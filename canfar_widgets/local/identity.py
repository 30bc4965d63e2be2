"""Who is calling: bearer tokens (or a ``CADC_SSO`` cookie) mapped to POSIX users.

Tokens are compared with :func:`hmac.compare_digest` against every known token, and never
appear in errors, reprs or logs.

Example:
    >>> users = Users({"s3cret": "alice"})
    >>> users.authenticate("Bearer s3cret", None).name
    'alice'
    >>> users.authenticate(None, None)
    Traceback (most recent call last):
    ...
    canfar_widgets.local.errors.PlatformError: cannot get group memberships for anonymous
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from canfar_widgets.local.errors import PlatformError

__all__ = ["User", "Users"]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class User:
    """A caller: name (``userid``), uid, default group, other groups.

    ``gid`` is what a session record shows as ``runAsGID``: the launch templates set
    ``runAsGroup: ${skaha.posixid}``, the *uid* (helm ``_helpers.tpl``), so it equals ``uid``
    unless given; ``default_group`` is the account's real primary group.
    """

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    default_group: int | None = None

    def posix_principal(self) -> str:
        """How the server prints the caller in ``No active job for user ...``.

        cadc-util ``PosixPrincipal.toString``: ``PosixPrincipal [uidNumber=20001,20001,alice]``.
        """
        group = self.gid if self.default_group is None else self.default_group
        return f"PosixPrincipal [uidNumber={self.uid},{group},{self.name}]"


def _local_ids() -> tuple[int, int, tuple[int, ...]]:
    """The real ids of the user the processes run as (what a pod's securityContext shows)."""
    if not hasattr(os, "getuid"):  # pragma: no cover - not POSIX
        return 1000, 1000, ()
    uid, gid = os.getuid(), os.getgid()
    groups = tuple(sorted(set(os.getgroups()) - {gid}))
    return uid, gid, groups


class Users:
    """Token -> user table. The first token is the platform's own user (the local account)."""

    def __init__(self, tokens: Mapping[str, str], *, anonymous_status: int = 400) -> None:
        if not tokens:
            raise ValueError("at least one token is needed")
        uid, gid, groups = _local_ids()
        self._entries: list[tuple[bytes, User]] = []
        by_name: dict[str, User] = {}
        for n, (token, name) in enumerate(tokens.items()):
            if not token or not name:
                raise ValueError("tokens and user names must not be empty")
            user = by_name.get(name)
            if user is None:
                # extra users get synthetic ids so their records look like other people's
                user = (
                    User(name, uid, uid, groups, default_group=gid)
                    if n == 0
                    else User(name, 20000 + n, 20000 + n)
                )
                by_name[name] = user
            self._entries.append((token.encode("utf-8", "surrogateescape"), user))
        self.anonymous_status = anonymous_status

    def __repr__(self) -> str:
        return f"Users({[u.name for _, u in self._entries]})"

    def authenticate(self, authorization: str | None, cookie: str | None) -> User:
        """The caller, or a :class:`PlatformError` (400/401) exactly as the server answers."""
        presented: str | None = None
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                presented = value.strip()
            else:
                raise PlatformError(401, "Unauthorized", headers=_CHALLENGE, newline=False)
        elif cookie:
            presented = cookie
        if presented is None:
            if self.anonymous_status == 401:
                raise PlatformError(401, "Unauthorized", headers=_CHALLENGE, newline=False)
            raise PlatformError(
                400, "cannot get group memberships for anonymous", headers=_CHALLENGE
            )
        candidate = presented.encode("utf-8", "surrogateescape")
        found: User | None = None
        for token, user in self._entries:  # check every token: timing says nothing about which
            if hmac.compare_digest(candidate, token) and found is None:
                found = user
        if found is None:
            raise PlatformError(401, "Unauthorized", headers=_CHALLENGE, newline=False)
        return found

    def get(self, name: str) -> User | None:
        for _, user in self._entries:
            if user.name == name:
                return user
        return None
