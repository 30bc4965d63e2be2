"""Split work across the replicas of a headless job: ``chunk`` and ``stripe``.

A job launched with ``replicas=N`` runs N containers, each with ``REPLICA_ID`` (1..N) and
``REPLICA_COUNT`` (N) in its environment. These helpers give each replica its share of an
iterable, with exactly the semantics (and error messages) of the official
``canfar.helpers.distributed``, so scripts move between the two clients unchanged.

Both are generators: nothing is read or validated until the first item is requested, and the
environment is consulted only when ``replica``/``total`` are None.

Example (inside a replica):
    >>> from canfar_widgets.helpers import chunk
    >>> for path in chunk(sorted(Path("data").glob("*.fits"))):
    ...     process(path)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["chunk", "stripe"]

T = TypeVar("T")


def _replica_and_total(replica: int | None, total: int | None) -> tuple[int, int]:
    # int() on the raw value, as the official helper: a malformed variable fails loudly.
    replica = int(os.environ.get("REPLICA_ID", "1")) if replica is None else replica
    total = int(os.environ.get("REPLICA_COUNT", "1")) if total is None else total
    return replica, total


def stripe(
    iterable: Iterable[T], replica: int | None = None, total: int | None = None
) -> Iterator[T]:
    """Every ``total``-th item, starting at position ``replica - 1`` (round-robin).

    Streams: the iterable is never materialised, so it suits large or endless inputs.
    ``replica < 1`` or ``replica > total`` yields nothing; ``total <= 0`` (with a positive
    replica) raises ``ValueError`` from ``itertools.islice``.

    Example:
        >>> list(stripe(range(10), replica=1, total=3))
        [0, 3, 6, 9]
        >>> list(stripe(range(10), replica=2, total=3))
        [1, 4, 7]
    """
    replica, total = _replica_and_total(replica, total)
    if replica < 1 or 0 < total < replica:
        return
    yield from itertools.islice(iterable, replica - 1, None, total)


def chunk(
    iterable: Iterable[T], replica: int | None = None, total: int | None = None
) -> Iterator[T]:
    """The ``replica``-th of ``total`` contiguous, near-equal slices (1-based).

    Each replica gets ``len // total`` items and the last one also gets the remainder. With
    fewer items than replicas, replica ``r`` gets item ``r`` alone and the rest get nothing.
    The iterable is read into a list first (its length is needed).

    Raises:
        ValueError: ``total must be positive``, ``replica must be >= 1 (1-based indexing
            expected)`` or ``replica cannot exceed total`` (on first iteration).

    Example:
        >>> list(chunk(range(10), replica=4, total=4))
        [6, 7, 8, 9]
        >>> list(chunk([1, 2, 3], replica=2, total=5))
        [2]
    """
    replica, total = _replica_and_total(replica, total)
    if total <= 0:
        raise ValueError("total must be positive")
    if replica < 1:
        raise ValueError("replica must be >= 1 (1-based indexing expected)")
    if replica > total:
        raise ValueError("replica cannot exceed total")
    items = list(iterable)
    count = len(items)
    index = replica - 1
    if count < total:
        if index < count:
            yield items[index]
        return
    size = count // total
    end = count if replica == total else replica * size  # the last replica takes the remainder
    yield from items[index * size : end]
