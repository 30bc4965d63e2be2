"""Finding the session a lost create answer was for: the pure half of safe create.

A create POST whose answer is lost (a timeout, a reset, a 504 after the request may have
arrived) is never sent again; instead the caller lists its sessions and asks
:func:`match_lost` which record, if any, is the one it asked for. What counts:

- the record's ``name`` is exactly the name the replica asked for;
- its ``id`` is not one the caller already knew (sessions it created before, or the ids
  other replicas of the same call received);
- it started after the request began, by the *platform's* clock (estimated from the
  ``Date`` header of the listing, :func:`clock_offset`), less a small margin; or it has not
  started yet (a Pending record has no ``startTime``).

Exactly one such record is an answer; two are ambiguous (none is taken, and looking again
will not help); none means "not yet, or never". The I/O (listing, backoff) lives in
:meth:`canfar_widgets.sessions.AsyncSession._reconcile`.

Example:
    >>> match_lost([{"id": "k3x9ab2q", "name": "job-2"}], {2: "job-2"}, set(), 0.0)
    ({2: 'k3x9ab2q'}, set())
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = ["SESSION_ID", "Reconcile", "clock_offset", "match_lost"]

#: A session id as the server's Kubernetes label values allow (docs/local-platform.md, "Fidelity"); a
#: create answer that is not one (an HTML page, an empty body) is not an id.
SESSION_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Reconcile:
    """How a create whose answer was lost is looked for by name (safe create).

    Attributes:
        looks: how many listings are read at most (the first at once).
        delay: seconds before the second look; each later one waits ``factor`` times more.
        factor: backoff factor.
        margin: seconds of slack when comparing a record's ``startTime`` with the time the
            request began (the platform's clock, estimated from its ``Date`` header).

    Example:
        >>> session.reconcile = Reconcile(looks=6, delay=2.0)   # a slow platform
    """

    looks: int = 4
    delay: float = 1.0
    factor: float = 2.0
    margin: float = 2.0

    def delays(self) -> list[float]:
        """Seconds to wait before each look: ``[0, delay, delay*factor, ...]``."""
        return [0.0] + [self.delay * self.factor**i for i in range(max(1, self.looks) - 1)]


def clock_offset(response: httpx.Response) -> float:
    """The platform's clock minus ours (seconds), from its ``Date`` header; 0 if absent."""
    try:
        when = parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError, IndexError):
        return 0.0
    return when.timestamp() - time.time()


def match_lost(
    records: Iterable[Mapping[str, Any]],
    lost: Mapping[int, str],
    known: set[str],
    earliest: float,
) -> tuple[dict[int, str], set[int]]:
    """Which listed record each lost replica ({replica: name}) created.

    Returns ``({replica: id} found, {replica} ambiguous)``. ``earliest`` is the platform's
    time (seconds since the epoch) before which a record is too old to be the one.
    """
    from canfar_widgets.models import parse_time

    rows = list(records)
    found: dict[int, str] = {}
    ambiguous: set[int] = set()
    taken = set(known)
    for replica, name in lost.items():
        matches = [
            str(record["id"])
            for record in rows
            if record.get("name") == name
            and isinstance(record.get("id"), str)
            and record["id"] not in taken
            and _started_since(parse_time(record.get("startTime")), earliest)
        ]
        if len(matches) == 1:
            found[replica] = matches[0]
            taken.add(matches[0])
        elif len(matches) > 1:
            ambiguous.add(replica)
    return found, ambiguous


def _started_since(started: Any, earliest: float) -> bool:
    """Not started yet (no ``startTime``), or started at/after ``earliest``."""
    return started is None or started.timestamp() >= earliest
