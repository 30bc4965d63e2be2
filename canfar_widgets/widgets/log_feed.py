"""LogFeed: one log poll per session, shared by every LogViewer that shows it.

Why a feed of its own: the platform serves only a session's whole log
(``GET session/<id>?view=logs``, no offset), so each poll reads everything written so
far. Fifty viewers polling on their own read it fifty times, and a viewer that kept each
response kept the whole log in kernel memory. A ``LogFeed`` (a
:class:`~canfar_widgets.widgets.feed.Poller`) polls once for all its viewers and keeps
only the last ``max_chars`` characters (whole lines); the raw response is dropped as
soon as it is compared with what was kept.

The interval adapts to the log: reading a log of ``S`` bytes that grows ``g`` bytes/s
every ``S / (g + allowance)`` seconds keeps the bytes read within a small multiple of
the log (polls get further apart as the log grows: a 12 MB log written in 20 s is read
about 2.5 times in all), while a small or slow log is still read every ``fast`` seconds.

Example:
    >>> feed = LogFeed.of(SessionSource.of(session), "q2w8e4r6")
    >>> sub = feed.subscribe(lambda value, error: print(value.state, len(value.text)))
    >>> sub.set_visible(True)
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

from canfar_widgets.errors import NotFound
from canfar_widgets.vocabulary import ACTIVE_STATES, FINISHED_STATES, MISSING
from canfar_widgets.widgets._source import SessionSource
from canfar_widgets.widgets.feed import Poller

__all__ = ["LOG_FINISHED_STATES", "LogFeed", "LogState", "cap_text", "session_state"]

# States after which a session's log no longer grows.
LOG_FINISHED_STATES = FINISHED_STATES | {MISSING}


@dataclass(frozen=True)
class LogState:
    """One session's log as last read: what viewers render, plus what the last poll added.

    ``text`` is the last ``max_chars`` characters (whole lines where possible); ``end``
    is the stream offset where it ends (it jumps past everything sent before when the log
    was replaced, say by a restarted pod); ``added`` is the text the poll with number
    ``seq`` appended (``start`` its offset), empty when it replaced or changed nothing;
    when a poll added more than the cap, ``added`` is only its last ``max_chars`` and
    ``skip`` says how many characters before it were left out (the view starts afresh).
    """

    state: str = "Unknown"
    name: str = ""
    text: str = ""
    end: int = 0
    dropped: int = 0
    size: int = 0
    added: str = ""
    start: int = 0
    skip: int = 0
    replaced: bool = False
    read_failed: bool = False
    seq: int = 0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def finished(self) -> bool:
        return self.state in LOG_FINISHED_STATES

    @property
    def missing(self) -> bool:
        return self.state == MISSING


def cap_text(text: str, max_chars: int) -> tuple[str, int]:
    """``(kept, dropped)``: the last ``max_chars`` characters, cut at a line start if possible.

    Example:
        >>> cap_text("aa\\nbb\\ncc\\n", 6)
        ('bb\\ncc\\n', 3)
    """
    excess = len(text) - max_chars
    if excess <= 0:
        return text, 0
    cut = text.find("\n", excess)
    cut = excess if cut == -1 else cut + 1
    return text[cut:], cut


async def session_state(source: SessionSource, session_id: str) -> tuple[str, str]:
    """``(state, name)`` of one session; state ``"missing"`` when the platform does not know it.

    ``info`` leaves out an id it could not read (``errors="ignore"``: not found, but also a
    transient 500) or raises ``NotFound`` (``errors="raise"``). The id is only called
    missing when a successful listing of all sessions does not have it either, so a
    hiccup never reads as "finished".
    """
    try:
        records = await source.info([session_id])
    except NotFound:
        records = []
    for record in records:
        if record.id == session_id:
            return record.state or "Unknown", record.name or ""
    for record in await source.fetch():
        if record.id == session_id:
            return record.state or "Unknown", record.name or ""
    return MISSING, ""


class LogFeed(Poller[LogState]):
    """The shared log poll of one session on one session object (get it with :meth:`of`).

    Viewers subscribe as to any :class:`Poller`; the value is a :class:`LogState`.
    """

    # (id(source), session id) -> the live feed. A feed keeps its source alive, so the id
    # is not reused while the entry can be found; dead feeds drop out on their own.
    _feeds: ClassVar[weakref.WeakValueDictionary[tuple[int, str], LogFeed]] = (
        weakref.WeakValueDictionary()
    )
    _feeds_lock = threading.Lock()

    # Bytes per second a poll may read beyond the log's own growth: a log under about
    # fast x allowance bytes is read every `fast` seconds whatever its growth.
    read_allowance = 64_000.0
    # The longest wait between polls of a growing log (a quiet log of any size is read
    # at least this often while its session runs).
    max_interval = 60.0

    def __init__(
        self,
        source: SessionSource,
        session_id: str,
        *,
        fast: float = 2.0,
        slow: float = 15.0,
        max_chars: int = 2_000_000,
    ) -> None:
        self.source = source
        self.session_id = session_id
        self.max_chars = max_chars
        self._rate = 0.0  # smoothed growth, characters per second
        self._last: tuple[float, int] | None = None  # (monotonic time, size) of the last read
        super().__init__(
            self._read, fast=fast, slow=slow, is_busy=lambda v: v.active, name=f"logs:{session_id}"
        )

    @classmethod
    def of(cls, source: SessionSource, session_id: str, **kwargs: Any) -> LogFeed:
        """The feed of ``session_id`` on ``source``, made on first use (``kwargs`` then apply).

        A later caller asking for a larger ``max_chars`` raises the shared cap.
        """
        key = (id(source), session_id)
        with cls._feeds_lock:
            feed = cls._feeds.get(key)
            if feed is None or feed.source is not source:
                feed = cls(source, session_id, **kwargs)
                cls._feeds[key] = feed
            elif kwargs.get("max_chars", 0) > feed.max_chars:
                feed.max_chars = int(kwargs["max_chars"])
            return feed

    def interval(self) -> float:
        """As :meth:`Poller.interval`, but a large log is read less often (see the module)."""
        base = super().interval()
        value = self.value
        if self.error is not None or value is None or not value.active:
            return base
        adaptive = value.size / (self._rate + self.read_allowance)
        return max(base, min(adaptive, self.max_interval))

    async def read_all(self) -> str:
        """The session's whole log as the platform serves it now (not kept; for "Show all")."""
        logs = await self.source.logs([self.session_id])
        return logs.get(self.session_id, "")

    async def _read(self) -> LogState:
        # State first: when it says "finished", the log read next is complete.
        state, name = await session_state(self.source, self.session_id)
        previous = self.value or LogState()
        name = name or previous.name
        if state == MISSING:
            return _replace(previous, state=state, name=name, seq=previous.seq + 1)
        logs = await self.source.logs([self.session_id])
        if self.session_id not in logs:  # read failed (errors="ignore"): keep the last text
            return _replace(
                previous, state=state, name=name, read_failed=True, seq=previous.seq + 1
            )
        raw = logs.pop(self.session_id)
        del logs  # the response text is the largest thing here: hold one reference only
        self._measure(len(raw))
        return self._next(previous, raw, state, name)

    def _measure(self, size: int) -> None:
        now = time.monotonic()
        if self._last is not None:
            then, before = self._last
            if now > then and size >= before:
                rate = (size - before) / (now - then)
                self._rate = rate if self._rate == 0 else 0.5 * self._rate + 0.5 * rate
        self._last = (now, size)

    def _next(self, previous: LogState, raw: str, state: str, name: str) -> LogState:
        seq = previous.seq + 1
        old_size, kept = previous.size, previous.text
        # A continuation: the new log is at least as long and still holds the kept text where
        # it was (compared in place: no copy of the raw text is made).
        continues = (
            previous.seq > 0
            and not previous.missing
            and len(raw) >= old_size
            and raw.startswith(kept, old_size - len(kept))
        )
        if continues and len(raw) - old_size <= self.max_chars:
            added = raw[old_size:]
            text, cut = cap_text(kept + added, self.max_chars) if added else (kept, 0)
            return LogState(
                state=state,
                name=name,
                text=text,
                end=previous.end + len(added),
                dropped=previous.dropped + cut,
                size=len(raw),
                added=added,
                start=previous.end,
                seq=seq,
            )
        if continues:
            # More was written than the cap keeps: send only what is kept, and say how much
            # was left out, so views start afresh from it instead of re-reading the text.
            text, cut = cap_text(raw[old_size:], self.max_chars)
            new_end = previous.end + len(raw) - old_size
            return LogState(
                state=state,
                name=name,
                text=text,
                end=new_end,
                dropped=previous.dropped + len(kept) + cut,
                size=len(raw),
                added=text,
                start=previous.end,
                skip=cut,
                seq=seq,
            )
        # First text, or not a continuation (a restarted pod): replace. The end offset moves
        # past anything sent before, so views drop stale appends and re-render.
        text, cut = cap_text(raw, self.max_chars)
        return LogState(
            state=state,
            name=name,
            text=text,
            end=previous.end + len(raw) + 1,
            dropped=cut,
            size=len(raw),
            replaced=previous.seq > 0,
            seq=seq,
        )


def _replace(previous: LogState, **changes: Any) -> LogState:
    """``previous`` with ``changes``; nothing was added or replaced by this poll."""
    return dataclasses.replace(
        previous, **{"added": "", "replaced": False, "read_failed": False, **changes}
    )
