"""``Event`` and ``parse_events``: the kubectl custom-columns table of ``view=events``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from canfar_widgets.models.parsing import parse_time

__all__ = ["Event", "parse_events"]


class Event(BaseModel):
    """One Kubernetes event of a session (a row of ``GET session/{id}?view=events``)."""

    type: str | None = None
    reason: str | None = None
    message: str | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None


_EVENT_COLUMNS = {
    "TYPE": "type",
    "REASON": "reason",
    "MESSAGE": "message",
    "FIRST-TIME": "first_time",
    "LAST-TIME": "last_time",
}


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "<none>") else value


def parse_events(text: Any) -> list[Event]:
    """Rows of the kubectl event table the server returns; never raises.

    Columns are located by their start offsets in the header line. Rows that do not line up
    (over-long messages) fall back to whitespace splitting: type and reason are single words,
    the two times the last two words, the message everything in between. ``<none>`` reads as
    None and a body of just ``<none>`` as no events.

    Example:
        >>> table = ("TYPE     REASON    MESSAGE                 FIRST-TIME             LAST-TIME\\n"
        ...          "Normal   Pulled    Container image pulled  2026-08-01T17:49:57Z   <none>\\n")
        >>> [(e.reason, e.message, e.last_time) for e in parse_events(table)]
        [('Pulled', 'Container image pulled', None)]
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return []
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() == "<none>":
        return []
    header, rows = lines[0], lines[1:]
    columns = [(m.group(0).upper(), m.start()) for m in re.finditer(r"\S+", header)]
    names = [name for name, _ in columns]
    if "TYPE" not in names:  # no header line: treat every line as a row
        header, rows = "", lines
        columns = [(name, -1) for name in _EVENT_COLUMNS]
    events = []
    for row in rows:
        if row.strip() == "<none>":
            continue
        cells = _aligned(row, columns) if header else None
        if cells is None:
            cells = _split_row(row, [name for name, _ in columns])
        values = {
            _EVENT_COLUMNS[name]: value for name, value in cells.items() if name in _EVENT_COLUMNS
        }
        events.append(
            Event(
                type=_cell(values.get("type")),
                reason=_cell(values.get("reason")),
                message=_cell(values.get("message")),
                first_time=parse_time(_cell(values.get("first_time"))),
                last_time=parse_time(_cell(values.get("last_time"))),
            )
        )
    return events


def _aligned(row: str, columns: list[tuple[str, int]]) -> dict[str, str] | None:
    """Cells sliced at the header offsets, or None if the row does not line up with them."""
    starts = [start for _, start in columns]
    if len(row) <= starts[-1]:
        return None
    for start in starts[1:]:
        # Each column must begin with a value right after a blank.
        if row[start - 1] != " " or row[start] == " ":
            return None
    bounds = [*starts, len(row)]
    return {name: row[bounds[i] : bounds[i + 1]] for i, (name, _) in enumerate(columns)}


def _split_row(row: str, names: list[str]) -> dict[str, str]:
    """Whitespace fallback for ragged rows: only MESSAGE may contain spaces."""
    words = row.split()
    cells: dict[str, str] = {}
    if "MESSAGE" not in names:
        return dict(zip(names, words, strict=False))
    at = names.index("MESSAGE")
    before, after = names[:at], names[at + 1 :]
    cells.update(zip(before, words[: len(before)], strict=False))
    rest = words[len(before) :]
    if len(rest) > len(after):
        tail = rest[len(rest) - len(after) :] if after else []
        cells.update(zip(after, tail, strict=False))
        cells["MESSAGE"] = " ".join(rest[: len(rest) - len(after)])
    else:
        # Too few words to hold the trailing columns: keep what is there as the message.
        cells["MESSAGE"] = " ".join(rest)
    return cells
