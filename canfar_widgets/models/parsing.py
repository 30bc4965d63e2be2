"""Tolerant parsing of the server's odd values (``"<none>"``, ``"101Mi"``, ``"250m"``, times).

These never raise: a value that cannot be read is None, and the record that holds it
notes an anomaly."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["parse_gigabytes", "parse_quantity", "parse_time"]

_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]{0,2})\s*$")


def _split_quantity(value: Any) -> tuple[float, str] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number, suffix = float(value), ""
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None or match.group(2) not in _SUFFIXES:
            return None
        try:
            number, suffix = float(match.group(1)), match.group(2)
        except (ValueError, OverflowError):  # pragma: no cover - the regex admits floats only
            return None
    else:
        return None
    if not math.isfinite(number * _SUFFIXES[suffix]):
        return None
    return number, suffix


def parse_quantity(value: Any) -> float | None:
    """A Kubernetes quantity as a float in base units; None for ``"<none>"``, junk or absence.

    Example:
        >>> parse_quantity("250m"), parse_quantity("4Gi"), parse_quantity("0.54")
        (0.25, 4294967296.0, 0.54)
        >>> parse_quantity("<none>") is None
        True
    """
    split = _split_quantity(value)
    if split is None:
        return None
    number, suffix = split
    return number * _SUFFIXES[suffix]


def parse_gigabytes(value: Any) -> float | None:
    """Memory in decimal GB: bare numbers are GB already (as skaha reports them), units convert.

    Example:
        >>> parse_gigabytes("4.29"), parse_gigabytes("8G"), round(parse_gigabytes("4Gi"), 2)
        (4.29, 8.0, 4.29)
    """
    split = _split_quantity(value)
    if split is None:
        return None
    number, suffix = split
    if suffix == "":
        return number
    return number * _SUFFIXES[suffix] / 1e9


_TIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None if absent or unreadable.

    Accepts ``Z`` or offsets, missing seconds (``2026-08-01T17:49Z``, as Java prints :00)
    and fractions of any length.

    Example:
        >>> parse_time("2026-08-01T17:49Z")
        datetime.datetime(2026, 8, 1, 17, 49, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    match = _TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micro,
            tzinfo=timezone.utc,
        )
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            moment -= sign * offset
    except (ValueError, OverflowError):
        return None
    return moment


def _is_none_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in ("", "<none>")


# Half a UTF-16 pair: JSON may escape one ("\\ud800"), but no UTF-8 text can hold it, so a
# widget showing it could not send its state to the browser.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD (as decoding bad UTF-8 does)."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdecimal():
        return int(value.strip())
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
