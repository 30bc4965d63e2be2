"""Byte-exact renderings of what the real skaha server and its tools print.

Each helper reproduces one Java or Kubernetes formatting rule the official server exposes on the
wire, so clients tested against the local platform meet the same strings as in production.

Example:
    >>> gson_pretty([{"id": "abc", "supplementalGroups": []}])
    '[\\n  {\\n    "id": "abc",\\n    "supplementalGroups": []\\n  }\\n]'
    >>> java_split("a b  c ", " ")
    ['a', 'b', '', 'c']
    >>> decimal_g(137.438953472)
    '137.439G'
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

__all__ = [
    "GIB_IN_GB",
    "compact_json",
    "decimal_g",
    "gib_to_gb",
    "gson_pretty",
    "indent_item",
    "instant",
    "java_decimal",
    "java_double",
    "java_int",
    "java_split",
    "join_items",
    "kubectl_table",
    "offset_datetime",
]

GIB_IN_GB = 1.073741824  # 1 GiB in decimal GB: how the server turns "4Gi" into "4.29"

_JAVA_DOUBLE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?")
_JAVA_INT = re.compile(r"[+-]?\d+")


def gson_pretty(value: Any) -> str:
    """Gson ``setPrettyPrinting().disableHtmlEscaping()`` output: 2-space indent, ``": "``.

    Python's ``indent=2`` layout is the same as Gson's (``[]``/``{}`` stay on one line) and,
    like Gson with HTML escaping disabled, ``=``, ``<`` and ``&`` are written as themselves.
    """
    return json.dumps(value, indent=2, ensure_ascii=False)


def indent_item(pretty: str) -> str:
    """A pretty top-level object re-indented to sit inside a pretty list."""
    return "  " + pretty.replace("\n", "\n  ")


def join_items(items: Sequence[str]) -> str:
    """A Gson pretty list from already indented items (see :func:`indent_item`)."""
    if not items:
        return "[]"
    return "[\n" + ",\n".join(items) + "\n]"


def compact_json(value: Any) -> str:
    """org.json ``toString()``: no whitespace at all (what ``/v1/context`` answers)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def java_split(text: str, sep: str) -> list[str]:
    """Java ``String.split`` with a literal one-character separator.

    Trailing empty strings are removed, but an empty input gives ``[""]``: the server splits
    ``args`` on single spaces and ``env`` entries on ``=`` exactly like this.
    """
    if text == "":
        return [""]
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def java_double(raw: str) -> float | None:
    """``Double.valueOf`` for the decimal forms a form field can carry; None if Java would throw."""
    text = raw.strip()  # Double.valueOf ignores surrounding whitespace
    if not _JAVA_DOUBLE.fullmatch(text):
        return None
    if text[-1] in "fFdD":
        text = text[:-1]
    return float(text)


def java_int(raw: str) -> int | None:
    """``Integer.parseInt``: no whitespace, optional sign, 32-bit range; None if Java would throw."""
    if not _JAVA_INT.fullmatch(raw):
        return None
    value = int(raw)
    if not -(2**31) <= value < 2**31:
        return None
    return value


def java_decimal(value: float, places: int) -> str:
    """``DecimalFormat("#.###")`` (for ``places=3``): HALF_EVEN, no trailing zeros, no bare dot."""
    quantum = Decimal(1).scaleb(-places)
    text = format(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def decimal_g(gb: float) -> str:
    """A RAM amount as the stats view prints it: decimal GB, up to 3 decimals, ``G``."""
    return java_decimal(gb, 3) + "G"


def gib_to_gb(gib: float) -> str:
    """A requested RAM amount as a session record shows it: ``4`` GiB -> ``"4.29"``."""
    return f"{gib * GIB_IN_GB:.2f}"


def offset_datetime(epoch: int) -> str:
    """``OffsetDateTime.toString`` in UTC, as skaha prints ``startTime``.

    Java drops the seconds when they are zero: ``2026-08-01T17:49Z``, otherwise
    ``2026-08-01T17:49:55Z``. Clients must parse both.
    """
    tm = time.gmtime(epoch)
    if tm.tm_sec == 0:
        return time.strftime("%Y-%m-%dT%H:%MZ", tm)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", tm)


def instant(epoch: int) -> str:
    """``Instant.toString`` (and Kubernetes ``metav1.Time``): always with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def kubectl_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``kubectl -o custom-columns`` layout (Go tabwriter: minwidth 6, padding 3, spaces).

    Every column but the last is padded to its widest cell plus 3 spaces (at least 6);
    the last column is written as is. No trailing newline.
    """
    lines = [list(header), *(list(r) for r in rows)]
    ncols = len(header)
    widths = [
        max(6, *(len(line[i]) + 3 for line in lines)) for i in range(ncols - 1)
    ]
    out = []
    for line in lines:
        cells = [line[i].ljust(widths[i]) for i in range(ncols - 1)]
        cells.append(line[-1])
        out.append("".join(cells))
    return "\n".join(out)
