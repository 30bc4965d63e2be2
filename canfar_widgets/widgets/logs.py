"""LogViewer: the container logs of one or more sessions, inline, following as they grow.

The platform only serves a session's whole log (``GET session/<id>?view=logs``), so
following means polling it; this widget sends the browser only what is new:

- each poll's text is compared with the previous one; when it continues it, the new
  part goes out as a custom message ``{kind: "append", id, text, start}`` and the view
  appends it without re-rendering; otherwise (a restarted pod) the text is replaced;
- the full text, capped at ``max_chars`` from the front, is kept here and in the
  ``texts`` trait, which is what a newly opened view renders (and what notebook widget
  state saves). To keep traffic small the trait is refreshed at most every few seconds
  while following, at once when a view opens or asks (``{kind: "resync"}``), and when
  the sessions finish. ``ends`` marks where each text ends in the stream, so a view can
  tell a missed append from a duplicate and ask for a resync;
- polling uses the shared :class:`~canfar_widgets.widgets.feed.Poller`: fast while a
  session is Pending or Running, paused while no view is visible, and stopped after one
  last fetch once every session has finished.

Example:
    >>> from canfar_widgets import LogViewer
    >>> LogViewer("q2w8e4r6")                      # one session, following
    >>> viewer = LogViewer(ids, session, follow=False)
    >>> print(viewer.text(ids[0]))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import traitlets

from canfar_widgets.errors import NotFound
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._backend import Backend
from canfar_widgets.widgets._base import CanfarWidget
from canfar_widgets.widgets.feed import Poller, Subscription

__all__ = ["LogViewer", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# States after which a session's log no longer grows.
FINISHED_STATES = frozenset({"Completed", "Failed", "missing"})
ACTIVE_STATES = frozenset({"Pending", "Running"})


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves, OSC links).

    Example:
        >>> strip_ansi("\\x1b[31mred\\x1b[0m plain")
        'red plain'
    """
    # Sequences first, then stray ESC characters: removing one sequence can join its
    # neighbours into a new one ("\x1b[\x1b@m" -> "\x1b[m"), and a lone ESC shows nothing useful anyway.
    return _ANSI.sub("", text).replace("\x1b", "")


def _normalise_ids(ids: str | Iterable[str]) -> list[str]:
    items = [ids] if isinstance(ids, str) else [str(i) for i in ids]
    seen: dict[str, None] = {}
    for item in items:
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


@dataclass
class _Snapshot:
    """One poll: each session's state ("missing" when the platform no longer knows it) and log."""

    states: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    """Sessions that exist but whose logs could not be read this time."""

    @property
    def active(self) -> bool:
        return any(s in ACTIVE_STATES for s in self.states.values())

    @property
    def finished(self) -> bool:
        return bool(self.states) and all(s in FINISHED_STATES for s in self.states.values())


async def session_states(backend: Backend, ids: list[str]) -> dict[str, str]:
    """``{id: state}`` for ``ids``; ``"missing"`` for sessions the platform does not know.

    ``info`` leaves out ids it could not read (``errors="ignore"``: not found, but also a
    transient 500) or raises ``NotFound`` (``errors="raise"``). An id is only called missing
    when a successful listing of all sessions does not have it either, so a hiccup never
    reads as "finished".
    """
    try:
        records = await backend.info(ids)
    except NotFound:
        records = []
        if len(ids) > 1:
            parts = await asyncio.gather(*(backend.info([i]) for i in ids), return_exceptions=True)
            records = [r for part in parts if isinstance(part, list) for r in part]
    found = {r.id: r.state for r in records if r.id}
    absent = [i for i in ids if i not in found]
    if absent:
        listed = {r.id: r.state for r in await backend.fetch() if r.id}
        for i in absent:
            found[i] = listed.get(i, "missing")
    return {i: found[i] for i in ids}


class LogViewer(CanfarWidget):
    """Logs of sessions ``ids`` with follow, search, wrap, copy and download.

    Args:
        ids: a session id or a list of them (a "Session" selector picks one to show).
        session: the session client (``None``: ``Session()`` from env/config).
        follow: poll for new output while a session runs (stops once all have finished).
        max_lines: lines shown before "Show all" (the rest stay available for copy/download).
        max_chars: characters kept per session; older output is dropped from the front.

    Traits: ``texts`` ``{id: text}`` (capped), ``states`` ``{id: state}``, ``following``,
    front-end owned ``selected``, ``follow``, ``wrap``, ``search``.

    Example:
        >>> viewer = LogViewer(["q2w8e4r6", "k3x9ab2q"], session)
        >>> viewer.refresh().result()   # fetch now
        >>> viewer.text("q2w8e4r6")
        'Hello, World!\\n'
    """

    _entry = "log_viewer"

    ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    follow = traitlets.Bool(True).tag(sync=True)
    wrap = traitlets.Bool(False).tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    max_lines = traitlets.Int(5000).tag(sync=True)
    max_chars = traitlets.Int(2_000_000).tag(sync=True)

    texts = traitlets.Dict().tag(sync=True)
    """``{id: log text}``, the last ``max_chars`` characters (whole lines) of each log."""
    ends = traitlets.Dict().tag(sync=True)
    """``{id: stream offset}`` where each text ends; appends carry their ``start``."""
    dropped = traitlets.Dict().tag(sync=True)
    """``{id: characters dropped from the front}`` by the ``max_chars`` cap."""
    states = traitlets.Dict().tag(sync=True)
    following = traitlets.Bool(False).tag(sync=True)

    # Seconds between trait refreshes while following (appends go out at once regardless).
    flush_interval = 5.0
    # Poll intervals while following: fast while a session is Pending/Running, else slow.
    poll_fast = 2.0
    poll_slow = 15.0

    def __init__(
        self,
        ids: str | Iterable[str],
        session: Any = None,
        *,
        follow: bool = True,
        max_lines: int = 5000,
        max_chars: int = 2_000_000,
        **kwargs: Any,
    ) -> None:
        ids = _normalise_ids(ids)
        if not ids:
            raise ValueError("LogViewer needs at least one session id")
        super().__init__(
            ids=ids, selected=ids[0], follow=follow, max_lines=max_lines, max_chars=max_chars, **kwargs
        )
        self._backend = self._attach(session)
        self._raw: dict[str, str] = {}
        self._stored: dict[str, str] = {}
        self._end: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._dirty = False
        self._last_flush = 0.0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._sub: Subscription | None = None
        self._sub_polls = 0
        self._poller: Poller[_Snapshot] = Poller(
            self._poll,
            fast=self.poll_fast,
            slow=self.poll_slow,
            is_busy=lambda snap: snap.active,
            name=f"logs:{','.join(ids)[:40]}",
        )
        self.observe(self._watch_follow, names="follow")
        # The first fetch: the subscription's own poll when following (one request, not two).
        self._initial: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if follow:
            self._start_following()
        else:
            self._initial = self.refresh()

    # -- public ----------------------------------------------------------------------------------

    def refresh(self) -> concurrent.futures.Future[Any]:
        """Fetch the logs now (also while following); returns a future for tests and scripts."""
        return self._spawn(self._refresh(), action="Fetching logs")

    def text(self, session_id: str | None = None) -> str:
        """The kept log text of ``session_id`` (default: the first id), escape codes included."""
        return self._stored.get(session_id or self.ids[0], "")

    # -- polling ---------------------------------------------------------------------------------

    async def _poll(self) -> _Snapshot:
        ids = list(self.ids)
        # States first: if they say "finished", the logs fetched next are complete.
        states = await session_states(self._backend, ids)
        logs = await self._backend.logs(ids)
        failed = [i for i in ids if i not in logs and states.get(i) != "missing"]
        return _Snapshot(states=states, logs=logs, failed=failed)

    async def _refresh(self) -> None:
        snapshot = await asyncio.wrap_future(self._poller.refresh_now())
        if self._sub is None or self._sub.closed:
            self._apply(snapshot)

    def _start_following(self) -> None:
        if self._sub is not None and not self._sub.closed:
            return
        self._sub_polls = self._poller.polls
        # Tracked: visible while a view is, closed with the widget.
        self._sub = self._track(self._poller, self._on_poll)
        self._runner.call_soon(lambda: self._update(following=True))

    def _stop_following(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            self._untrack(sub)
            self._runner.call_soon(lambda: self._update(following=False))

    def _watch_follow(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._start_following()
        else:
            self._stop_following()

    def _on_poll(self, snapshot: _Snapshot | None, error: BaseException | None) -> None:
        """Poller callback (runner thread)."""
        if error is not None:
            message = self._scrub(self._poller.describe_failure(error, "Fetching logs"))
            self._update(error=message, status=message)
            if not self._initial.done():
                self._initial.set_exception(error)
            return
        if snapshot is None:
            return
        self._apply(snapshot)
        if not self._initial.done():
            self._initial.set_result(None)
        # Stop after one last fetch made while subscribed (not a value handed over on subscribe).
        if snapshot.finished and self._poller.polls > self._sub_polls and self._sub is not None:
            sub, self._sub = self._sub, None
            self._untrack(sub)
            self._update(following=False)
            self._flush()
            self._update(status="All sessions have finished; these are their final logs.")

    # -- applying text ----------------------------------------------------------------------------

    def _apply(self, snapshot: _Snapshot) -> None:
        reset = False
        for sid in self.ids:
            if sid in snapshot.logs:
                reset |= self._apply_text(sid, snapshot.logs[sid])
        self._update(states={sid: snapshot.states.get(sid, "Unknown") for sid in self.ids})
        self._mark_updated()
        if snapshot.failed:
            message = f"Fetching logs failed for {', '.join(snapshot.failed)}; showing the last text read."
            self._update(error=message, status=message)
        if reset or not self._sub or time.monotonic() - self._last_flush >= self.flush_interval:
            self._flush()
        elif self._dirty and self._flush_timer is None:
            delay = self.flush_interval - (time.monotonic() - self._last_flush)
            self._flush_timer = self._runner.loop.call_later(max(0.0, delay), self._flush)

    def _apply_text(self, sid: str, new: str) -> bool:
        """Take one session's latest full log; True when the text was replaced, not extended."""
        old = self._raw.get(sid)
        if old == new:
            return False
        self._raw[sid] = new
        if old is not None and new.startswith(old) and len(new) - len(old) <= self.max_chars:
            added = new[len(old) :]
            start = self._end[sid]
            self._end[sid] = start + len(added)
            self._stored[sid] = self._cap(sid, self._stored.get(sid, "") + added)
            self._dirty = True
            self.send({"kind": "append", "id": sid, "text": added, "start": start})
            return False
        # First text, or not a continuation (a restarted pod): replace. The end offset moves
        # past anything sent before, so views drop stale appends and re-render.
        self._end[sid] = self._end.get(sid, 0) + len(new) + 1
        self._dropped[sid] = 0
        self._stored[sid] = self._cap(sid, new)
        self._dirty = True
        return True

    def _cap(self, sid: str, text: str) -> str:
        excess = len(text) - self.max_chars
        if excess <= 0:
            return text
        cut = text.find("\n", excess)
        cut = excess if cut == -1 else cut + 1  # drop whole lines where possible
        self._dropped[sid] = self._dropped.get(sid, 0) + cut
        return text[cut:]

    def _flush(self) -> None:
        """Refresh the ``texts``/``ends`` traits from what is kept (runner thread)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._last_flush = time.monotonic()
        self._dirty = False
        self._update(
            texts=dict(self._stored), ends=dict(self._end), dropped=dict(self._dropped)
        )

    # -- front-end messages -------------------------------------------------------------------------

    def _visibility_changed(self, visible: bool) -> None:
        if visible:
            self._runner.call_soon(self._flush)  # a view (maybe a new one) renders fresh state

    def _on_resync(self, content: dict[str, Any]) -> None:
        self._runner.call_soon(self._flush)

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    # -- representations ------------------------------------------------------------------------------

    def _summary(self) -> str:
        parts = []
        for sid in self.ids:
            text = self._stored.get(sid, "")
            lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
            state = self.states.get(sid, "")
            parts.append(f"{sid} {lines} lines" + (f" ({state})" if state else ""))
        mode = ", following" if self.following else ""
        return "; ".join(parts) + mode

    def _static_html(self, tail: int = 200) -> str:
        pre_style = (
            f"font-family:{_html.MONO};font-size:0.92em;max-height:30em;overflow:auto;"
            f"white-space:pre-wrap;border:1px solid {_html.BORDER};border-radius:4px;"
            "padding:4px 8px;margin:2px 0 6px"
        )
        sections = []
        for sid in self.ids:
            text = strip_ansi(self._stored.get(sid, ""))
            lines = text.splitlines()
            shown = lines[-tail:]
            summary = f"Logs of {sid}"
            state = self.states.get(sid)
            details = [state] if state else []
            if len(lines) > len(shown):
                details.append(f"last {len(shown)} of {len(lines)} lines")
            if details:
                summary += f" ({', '.join(details)})"
            body = _html.esc("\n".join(shown)) or "(no output)"
            sections.append(
                f"<details open><summary>{_html.esc(summary)}</summary>"
                f'<pre style="{pre_style}">{body}</pre></details>'
            )
        note = "static snapshot: run the notebook to follow the logs"
        return _html.snapshot("Session logs", "".join(sections), note=note, error=self.error)
