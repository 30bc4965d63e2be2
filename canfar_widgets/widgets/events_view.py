"""EventsView: the Kubernetes events of sessions as tables (why is my session Pending?).

The platform answers ``GET session/<id>?view=events`` with kubectl's whitespace-aligned
table; :func:`canfar_widgets.models.parse_events` turns it into rows, and this widget shows
one table per session with Type, Reason, Message, First seen and Last seen. Warnings
(ImagePullBackOff, FailedScheduling, OOMKilled...) are marked with words, not colour alone.
Each table is headed by the session's name (``multi2-1``), its id on hover: people know
their sessions by name.

Example:
    >>> from canfar_widgets import EventsView
    >>> EventsView("k3x9ab2q")
    >>> view = EventsView(ids, session)
    >>> view.refresh().result()
    >>> view.warnings()
    [('k3x9ab2q', 'FailedScheduling', '0/3 nodes are available: insufficient memory.')]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

import traitlets

from canfar_widgets.errors import NotFound, describe_error
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets.log_viewer import _normalise_ids

__all__ = ["EventsView", "event_row"]

COLUMNS = ("Type", "Reason", "Message", "First seen", "Last seen")


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def event_row(event: Any) -> dict[str, Any]:
    """One event as the ``events`` trait holds it (times as epoch seconds or None).

    Example:
        >>> event_row(Event(type="Warning", reason="BackOff", message="Back-off pulling"))
        {'type': 'Warning', 'reason': 'BackOff', 'message': 'Back-off pulling', 'first_time': None, 'last_time': None}
    """
    return {
        "type": getattr(event, "type", None) or "",
        "reason": getattr(event, "reason", None) or "",
        "message": getattr(event, "message", None) or "",
        "first_time": _epoch(getattr(event, "first_time", None)),
        "last_time": _epoch(getattr(event, "last_time", None)),
    }


class EventsView(CanfarWidget):
    """Events of sessions ``ids`` in tables, with a Refresh button.

    Args:
        ids: a session id or a list of them (one table each).
        session: the session client (``None``: ``Session()`` from env/config).

    Traits: ``events`` ``{id: [{type, reason, message, first_time, last_time}]}`` (times in
    epoch seconds), ``problems`` ``{id: message}`` for sessions whose events could not be
    read, ``names`` ``{id: name}`` (from the shared session list, else one ``info`` call;
    a session whose name is unknown is headed by its id).

    Example:
        >>> view = EventsView(["k3x9ab2q"], session)
        >>> view.refresh().result()
        >>> view.events["k3x9ab2q"][0]["reason"]
        'Scheduled'
    """

    _entry = "events_view"

    ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    events = traitlets.Dict().tag(sync=True)
    problems = traitlets.Dict().tag(sync=True)
    names = traitlets.Dict().tag(sync=True)

    def __init__(self, ids: str | Iterable[str], session: Any = None, **kwargs: Any) -> None:
        ids = _normalise_ids(ids)
        if not ids:
            raise ValueError("EventsView needs at least one session id")
        super().__init__(ids=ids, **kwargs)
        self._attach(session)
        self._initial = self.refresh()

    def refresh(self) -> concurrent.futures.Future[Any]:
        """Read the events again; returns a future (tests and scripts may wait on it)."""
        return self._spawn(self._refresh(), action="Fetching events", busy=True)

    def warnings(self) -> list[tuple[str, str, str]]:
        """``(id, reason, message)`` of every Warning event shown."""
        return [
            (sid, row["reason"], row["message"])
            for sid in self.ids
            for row in self.events.get(sid, [])
            if row["type"].lower() == "warning"
        ]

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    _messages: ClassVar[Messages] = {
        "refresh": _on_refresh
    }  # what the view sends (plus "visibility")

    async def _refresh(self) -> None:
        ids = list(self.ids)
        # One call per session, so one vanished session does not hide the others' events.
        results = await asyncio.gather(
            *(self.source.events([sid]) for sid in ids), return_exceptions=True
        )
        events: dict[str, list[dict[str, Any]]] = {}
        problems: dict[str, str] = {}
        for sid, result in zip(ids, results, strict=True):
            if isinstance(result, NotFound):
                problems[sid] = "Session not found: it may have been deleted."
            elif isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                problems[sid] = self._scrub(f"Could not read events: {describe_error(result)}")
            elif sid not in result:
                problems[sid] = "Could not read events: the session may have been deleted."
            else:
                events[sid] = [event_row(e) for e in result[sid]]
        names = await self._names(ids)
        count = sum(len(rows) for rows in events.values())
        warnings = sum(
            1 for rows in events.values() for r in rows if r["type"].lower() == "warning"
        )
        self._update(events=events, problems=problems, names=names)
        summary = f"{count} event{'s' if count != 1 else ''}"
        if warnings:
            summary += f", {warnings} warning{'s' if warnings != 1 else ''}"
        self._mark_updated(f"{summary}; updated {_clock()}")

    async def _names(self, ids: list[str]) -> dict[str, str]:
        """``{id: name}``: from the shared session list when it has them, else one ``info``."""
        known = {r.id: r.name for r in (self.source.feed.value or []) if r.id in ids and r.name}
        known.update({k: v for k, v in self.names.items() if k in ids and k not in known})
        missing = [sid for sid in ids if sid not in known]
        if missing:
            try:
                records = await self.source.info(missing)
            except Exception:  # names are a nicety: the id heads the table then
                records = []
            known.update({r.id: r.name for r in records if r.id and r.name})
        return known

    def title_of(self, session_id: str) -> str:
        """The heading of a session's table: its name, or its id while the name is unknown."""
        return self.names.get(session_id) or session_id

    # -- representations ------------------------------------------------------------------------

    def _summary(self) -> str:
        count = sum(len(rows) for rows in self.events.values())
        return f"{len(self.ids)} session{'s' if len(self.ids) != 1 else ''}, {count} events, {len(self.warnings())} warnings"

    def _static_html(self) -> str:
        tables = []
        for sid in self.ids:
            rows = []
            for row in self.events.get(sid, []):
                kind: object = row["type"]
                if row["type"].lower() == "warning":
                    kind = _html.Raw(
                        f'<span style="color:{_html.WARN};font-weight:600">⚠ Warning</span>'
                    )
                rows.append([kind, row["reason"], row["message"],
                             _html.absolute_time(row["first_time"]), _html.absolute_time(row["last_time"])])  # fmt: skip
            empty = self.problems.get(sid, "No events.")
            title = self.title_of(sid)
            caption = f"Events of {title}" + (f" (id {sid})" if title != sid else "")
            tables.append(_html.table_html(caption, COLUMNS, rows, empty=empty))
        note = "static snapshot: run the notebook to refresh"
        return _html.snapshot("Session events", "".join(tables), note=note, error=self.error)


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")
