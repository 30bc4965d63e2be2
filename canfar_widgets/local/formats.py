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
    "JavaError",
    "cadc_base64_decode",
    "compact_json",
    "decimal_g",
    "gib_to_gb",
    "gson_pretty",
    "has_text",
    "indent_item",
    "instant",
    "java_decimal",
    "java_double",
    "java_int",
    "java_int_value",
    "java_replacement",
    "java_split",
    "java_trim",
    "java_whitespace",
    "join_items",
    "kubectl_table",
    "offset_datetime",
]

GIB_IN_GB = 1.073741824  # 1 GiB in decimal GB: how the server turns "4Gi" into "4.29"

_JAVA_DOUBLE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?")
_JAVA_HEX_DOUBLE = re.compile(
    r"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)[fFdD]?"
)
_JAVA_SPECIAL = re.compile(r"([+-]?)(NaN|Infinity)[fFdD]?")
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUES = {c: i for i, c in enumerate(_B64_ALPHABET)}


class JavaError(ValueError):
    """A Java exception the server would throw: its class name and message.

    ``str(err)`` is Java's ``Throwable.toString()``, which is what a 500 body shows.

    Example:
        >>> str(JavaError("java.lang.IndexOutOfBoundsException", "No group 1"))
        'java.lang.IndexOutOfBoundsException: No group 1'
    """

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message

    @property
    def illegal_argument(self) -> bool:
        """cadc-rest answers these with 400 and the message; anything else is a 500."""
        return self.java_class == "java.lang.IllegalArgumentException"

    def __str__(self) -> str:
        return f"{self.java_class}: {self.message}"


def _illegal(message: str) -> JavaError:
    return JavaError("java.lang.IllegalArgumentException", message)


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


def java_trim(text: str) -> str:
    """``String.trim``: removes every character up to U+0020 at both ends (not other spaces)."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def java_whitespace(char: str) -> bool:
    """``Character.isWhitespace``: no-break spaces and NEL are not whitespace in Java."""
    return char.isspace() and char not in "\u00a0\u2007\u202f\x85"


def has_text(text: str | None) -> bool:
    """cadc-util ``StringUtil.hasText``: not None and not only (Java) whitespace."""
    return text is not None and not all(java_whitespace(c) for c in text)


def java_double(raw: str) -> float | None:
    """``Double.valueOf``: decimal, hex (``0x1p3``), ``NaN``/``Infinity``; None if Java would throw.

    Example:
        >>> java_double(" 1.5 "), java_double("0x1.8p1"), java_double("1,5")
        (1.5, 3.0, None)
    """
    text = java_trim(raw)  # Double.valueOf trims like String.trim
    if _JAVA_DOUBLE.fullmatch(text):
        return float(text[:-1] if text[-1] in "fFdD" else text)
    hexa = _JAVA_HEX_DOUBLE.fullmatch(text)
    if hexa:
        return float.fromhex(hexa.group(1) + "0x" + hexa.group(2))
    special = _JAVA_SPECIAL.fullmatch(text)
    if special:
        return float(special.group(1) + ("nan" if special.group(2) == "NaN" else "inf"))
    return None


def java_int_value(number: float) -> int:
    """``Double.intValue()``: truncates toward zero, saturates at the int range, NaN is 0."""
    if number != number:
        return 0
    if number >= 2**31 - 1:
        return 2**31 - 1
    if number <= -(2**31):
        return -(2**31)
    return int(number)


def java_replacement(replacement: str, matched: str) -> str:
    """What ``String.replaceAll(regex, replacement)`` inserts for one match of a group-less regex.

    The server fills its job templates with ``replaceAll``, so a user's value is read as a
    *replacement*: ``\\x`` is a literal ``x`` (the backslash is dropped), ``$0`` is the
    matched placeholder itself, ``$1``... are groups the pattern does not have
    (IndexOutOfBoundsException: a 500) and any other ``$`` is an IllegalArgumentException
    (a 400). JDK 17 ``Matcher.appendExpandedReplacement``, message for message.

    Example:
        >>> java_replacement("a\\\\b", "${x}")
        'ab'
        >>> java_replacement("echo $HOME", "${x}")
        Traceback (most recent call last):
        ...
        canfar_widgets.local.formats.JavaError: java.lang.IllegalArgumentException: Illegal group reference
    """
    out: list[str] = []
    cursor, length = 0, len(replacement)
    while cursor < length:
        char = replacement[cursor]
        if char == "\\":
            cursor += 1
            if cursor == length:
                raise _illegal("character to be escaped is missing")
            out.append(replacement[cursor])
            cursor += 1
        elif char == "$":
            cursor += 1
            if cursor == length:
                raise _illegal("Illegal group reference: group index is missing")
            char = replacement[cursor]
            if char == "{":
                cursor += 1
                name = ""
                while (
                    cursor < length
                    and replacement[cursor].isascii()
                    and replacement[cursor].isalnum()
                ):
                    name += replacement[cursor]
                    cursor += 1
                if not name:
                    raise _illegal("named capturing group has 0 length name")
                if cursor >= length or replacement[cursor] != "}":
                    raise _illegal("named capturing group is missing trailing '}'")
                if name[0].isdigit():
                    raise _illegal(f"capturing group name {{{name}}} starts with digit character")
                raise _illegal(f"No group with name {{{name}}}")
            if not ("0" <= char <= "9"):
                raise _illegal("Illegal group reference")
            group = int(char)
            cursor += 1
            # "Capture the largest legal group string": with no groups, only more zeros extend $0.
            while (
                cursor < length
                and "0" <= replacement[cursor] <= "9"
                and group * 10 + int(replacement[cursor]) <= 0
            ):
                cursor += 1
            if group != 0:
                raise JavaError("java.lang.IndexOutOfBoundsException", f"No group {group}")
            out.append(matched)
        else:
            out.append(char)
            cursor += 1
    return "".join(out)


def cadc_base64_decode(text: str) -> bytes:
    """cadc-util ``Base64.decode``, with its exact errors (no whitespace allowed).

    Example:
        >>> cadc_base64_decode("Ym9iOnM=")
        b'bob:s'
        >>> cadc_base64_decode("Ym9")
        Traceback (most recent call last):
        ...
        canfar_widgets.local.formats.JavaError: java.lang.IllegalArgumentException: \
Length of Base64 encoded input string is not a multiple of 4.
    """
    if len(text) % 4 != 0:
        raise _illegal("Length of Base64 encoded input string is not a multiple of 4.")
    end = len(text)
    while end > 0 and text[end - 1] == "=":
        end -= 1
    out = bytearray()
    out_len = (end * 3) // 4
    pos = 0
    while pos < end:
        # i0 and i1 are read even past the stripped '=' padding, as Java does
        quad = [text[pos], text[pos + 1]]
        pos += 2
        for _ in range(2):
            if pos < end:
                quad.append(text[pos])
                pos += 1
            else:
                quad.append("A")
        values = [_B64_VALUES.get(c, -1) for c in quad]
        if min(values) < 0:
            raise _illegal("Illegal character in Base64 encoded data.")
        b0, b1, b2, b3 = values
        for byte in ((b0 << 2) | (b1 >> 4), ((b1 & 0xF) << 4) | (b2 >> 2), ((b2 & 3) << 6) | b3):
            if len(out) < out_len:
                out.append(byte & 0xFF)
    return bytes(out)


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
    widths = [max(6, *(len(line[i]) + 3 for line in lines)) for i in range(ncols - 1)]
    out = []
    for line in lines:
        cells = [line[i].ljust(widths[i]) for i in range(ncols - 1)]
        cells.append(line[-1])
        out.append("".join(cells))
    return "\n".join(out)
