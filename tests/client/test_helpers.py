"""chunk/stripe behave exactly like canfar.helpers.distributed (outputs and error messages)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from canfar.helpers import distributed
from hypothesis import given, settings
from hypothesis import strategies as st

from canfar_widgets.helpers import chunk, stripe

PAIRS = [(chunk, distributed.chunk), (stripe, distributed.stripe)]


def outcome(function: Callable[..., Iterator[Any]], *args: Any) -> tuple[str, Any]:
    """("ok", items) or ("error", (type name, message)) — what a caller observes."""
    try:
        return "ok", list(function(*args))
    except Exception as err:  # comparing whatever each side raises
        return "error", (type(err).__name__, str(err))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLICA_ID", raising=False)
    monkeypatch.delenv("REPLICA_COUNT", raising=False)


def test_documented_examples() -> None:
    assert list(stripe(range(10), 1, 3)) == [0, 3, 6, 9]
    assert list(stripe(range(10), 2, 3)) == [1, 4, 7]
    assert list(stripe(range(100), replica=1, total=10)) == list(range(0, 100, 10))
    assert list(chunk(range(12), replica=1, total=3)) == [0, 1, 2, 3]
    assert [list(chunk(range(10), r, 4)) for r in range(1, 5)] == [
        [0, 1],
        [2, 3],
        [4, 5],
        [6, 7, 8, 9],
    ]
    assert list(chunk([1, 2, 3], replica=2, total=5)) == [2]
    assert list(chunk([1, 2, 3], replica=4, total=5)) == []


@pytest.mark.parametrize(
    ("replica", "total", "message"),
    [
        (1, 0, "total must be positive"),
        (0, 3, "replica must be >= 1 (1-based indexing expected)"),
        (4, 3, "replica cannot exceed total"),
    ],
)
def test_chunk_errors(replica: int, total: int, message: str) -> None:
    generator = chunk(range(5), replica, total)  # lazy: nothing raised yet
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        next(generator)


def test_stripe_non_positive_total() -> None:
    assert outcome(stripe, range(5), 1, 0) == outcome(distributed.stripe, range(5), 1, 0)
    assert outcome(stripe, range(5), 1, 0)[0] == "error"
    assert list(stripe(range(5), 0, 0)) == []  # replica < 1 wins, as upstream
    assert list(stripe(range(5), 4, 3)) == []


def test_lazy_and_single_pass() -> None:
    consumed: list[int] = []

    def source() -> Iterator[int]:
        for item in range(6):
            consumed.append(item)
            yield item

    generator = stripe(source(), 1, 2)
    assert inspect.isgenerator(generator) and consumed == []
    assert next(generator) == 0
    assert consumed == [0]  # stripe streams
    assert list(chunk(source(), 2, 2)) == [3, 4, 5]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_environment_defaults(monkeypatch: pytest.MonkeyPatch, ours: Any, theirs: Any) -> None:
    data = list(range(23))
    assert list(ours(data)) == list(theirs(data)) == data  # one replica of one: everything
    monkeypatch.setenv("REPLICA_ID", "3")
    monkeypatch.setenv("REPLICA_COUNT", "4")
    assert list(ours(data)) == list(theirs(data))
    assert list(ours(data, 1)) == list(theirs(data, 1))  # only the missing argument is read
    assert list(ours(data, None, 5)) == list(theirs(data, None, 5))
    monkeypatch.setenv("REPLICA_ID", "x")
    assert outcome(ours, data) == outcome(theirs, data)
    assert outcome(ours, data)[0] == "error"


def test_environment_read_when_iterated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Generators: like upstream, the variables are read on first iteration.
    ours, theirs = chunk(range(8)), distributed.chunk(range(8))
    monkeypatch.setenv("REPLICA_ID", "2")
    monkeypatch.setenv("REPLICA_COUNT", "2")
    assert list(ours) == list(theirs) == [4, 5, 6, 7]


def test_partitions() -> None:
    for count in range(0, 30):
        for total in range(1, 12):
            items = list(range(count))
            chunks = [list(chunk(items, r, total)) for r in range(1, total + 1)]
            stripes = [list(stripe(items, r, total)) for r in range(1, total + 1)]
            assert [x for part in chunks for x in part] == items  # in order
            assert sorted(x for part in stripes for x in part) == items  # a permutation


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_grid_matches_upstream(ours: Any, theirs: Any) -> None:
    for count in (0, 1, 2, 3, 7, 10, 16):
        for total in range(-2, 9):
            for replica in range(-2, 10):
                data = list(range(count))
                assert outcome(ours, data, replica, total) == outcome(
                    theirs, data, replica, total
                ), (
                    count,
                    replica,
                    total,
                )


@settings(max_examples=400, deadline=None)
@given(
    items=st.lists(st.integers() | st.text(max_size=3), max_size=60),
    replica=st.none() | st.integers(-5, 70),
    total=st.none() | st.integers(-5, 70),
    as_generator=st.booleans(),
)
def test_hypothesis_matches_upstream(
    items: list[Any], replica: int | None, total: int | None, as_generator: bool
) -> None:
    for ours, theirs in PAIRS:
        mine = (x for x in items) if as_generator else items
        upstream = (x for x in items) if as_generator else items
        assert outcome(ours, mine, replica, total) == outcome(theirs, upstream, replica, total)
