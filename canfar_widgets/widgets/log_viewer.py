"""LogViewer: the container logs of one or more sessions, inline, following as they grow.

The platform only serves a session's whole log (``GET session/<id>?view=logs``), so
following means polling it; this widget sends the browser only what is new:

- one poll per session, shared by every viewer of it on the same session object
  (:class:`~canfar_widgets.widgets.log_feed.LogFeed`, a
  :class:`~canfar_widgets.widgets.feed.Poller`): fast while the session is Pending or
  Running, less often as a big log grows (each poll reads the whole log), paused while
  no view is visible, stopped after one last read once the session has finished;
- the feed keeps the last ``max_chars`` characters (whole lines), once for all its
  viewers; when a poll continues the text, the new part goes out as a custom message
  ``{kind: "append", id, text, start}`` and the view appends it without re-rendering;
  otherwise (a restarted pod) the text is replaced;
- the ``texts`` trait (what a newly opened view renders, and what notebook widget state
  saves) is refreshed when a view opens or asks (``{kind: "resync"}``), when a text is
  replaced and when the sessions finish, not on every append; ``ends`` marks where each
  text ends in the stream, so a view can tell a missed append and ask for a resync;
- "Show all" past the cap reads the whole log once, on demand (``{kind: "show_all"}``),
  and hands it to the views without keeping it.

Example:
    >>> from canfar_widgets import LogViewer
    >>> LogViewer("q2w8e4r6")                      # one session, following
    >>> viewer = LogViewer(ids, session, follow=False)
    >>> print(viewer.text(ids[0]))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
from collections.abc import Iterable
from typing import Any, ClassVar

import traitlets

from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets.feed import Subscription
from canfar_widgets.widgets.log_feed import LOG_FINISHED_STATES, LogFeed, LogState

__all__ = ["LogViewer", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
__all__ += ["LOG_FINISHED_STATES"]  # re-exported for callers of the earlier module


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves, OSC links).

    Example:
        >>> strip_ansi("\\x1b[31mred\\x1b[0m plain")
        'red plain'
    """
    # Sequences first, then stray ESC characters: removing one sequence can join its
    # neighbours into a new one ("\x1b[\x1b@m" -> "\x1b[m"), and a lone ESC shows nothing useful anyway.
    return _ANSI.sub("", text).replace("\x1b", "")


def _not_found(ids: list[str]) -> str:
    if len(ids) == 1:
        return f"Session {ids[0]} not found."
    return f"Sessions {', '.join(ids)} not found."


def _normalise_ids(ids: str | Iterable[str]) -> list[str]:
    items = [ids] if isinstance(ids, str) else [str(i) for i in ids]
    seen: dict[str, None] = {}
    for item in items:
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


class LogViewer(CanfarWidget):
    """Logs of sessions ``ids`` with follow, search, wrap, copy and download.

    Args:
        ids: a session id or a list of them (a "Session" selector picks one to show, by name).
        session: the session client (``None``: ``Session()`` from env/config).
        follow: poll for new output while a session runs (stops once all have finished).
        max_lines: lines shown before "Show all" (the rest stay available for copy/download).
        max_chars: characters kept per session; older output is dropped from the front
            (and fetched again, once, when a view asks for all of it).

    Traits: ``texts`` ``{id: text}`` (capped), ``names`` ``{id: session name}``,
    ``states`` ``{id: state}``, ``following``, front-end owned ``selected``, ``follow``,
    ``wrap``, ``search``.

    Every viewer of one session on one session object shares one poll
    (:class:`~canfar_widgets.widgets.log_feed.LogFeed`) and its capped text.

    Example:
        >>> viewer = LogViewer(["q2w8e4r6", "k3x9ab2q"], session)
        >>> viewer.refresh().result()   # fetch now
        >>> viewer.text("q2w8e4r6")
        'Hello, World!\\n'
    """

    _entry = "log_viewer"

    ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    names = traitlets.Dict().tag(sync=True)
    """``{id: session name}`` as the platform reports them (the selector shows names)."""
    selected = traitlets.Unicode("").tag(sync=True)
    follow = traitlets.Bool(True).tag(sync=True)
    wrap = traitlets.Bool(False).tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    max_lines = traitlets.Int(5000).tag(sync=True)
    max_chars = traitlets.Int(2_000_000).tag(sync=True)

    texts = traitlets.Dict().tag(sync=True)
    """``{id: log text}``, the last ``max_chars`` characters (whole lines) of each log.

    Refreshed when a view opens or asks (``{kind: "resync"}``), when a text is replaced,
    while not following, and when the sessions finish; in between, views get only
    ``{kind: "append"}`` messages, so following sends each new character once."""
    ends = traitlets.Dict().tag(sync=True)
    """``{id: stream offset}`` where each text ends; appends carry their ``start``."""
    dropped = traitlets.Dict().tag(sync=True)
    """``{id: characters dropped from the front}`` by the ``max_chars`` cap."""
    states = traitlets.Dict().tag(sync=True)
    following = traitlets.Bool(False).tag(sync=True)

    # Poll intervals while following: fast while a session is Pending/Running, else slow
    # (a large, growing log is read less often: see LogFeed).
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
            ids=ids,
            selected=ids[0],
            follow=follow,
            max_lines=max_lines,
            max_chars=max_chars,
            **kwargs,
        )
        self._attach(session)
        self._feeds: dict[str, LogFeed] = {
            sid: LogFeed.of(
                self.source, sid, fast=self.poll_fast, slow=self.poll_slow, max_chars=max_chars
            )
            for sid in ids
        }
        self._logs: dict[str, LogState] = {}  # what this viewer last took from each feed
        self._subs: dict[str, Subscription] = {}
        self._sub_polls: dict[str, int] = {}
        self._following = False
        self.observe(self._watch_follow, names="follow")
        # The first fetch: the subscriptions' own polls when following (one request, not two).
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
        held = self._logs.get(session_id or self.ids[0])
        return held.text if held is not None else ""

    def name(self, session_id: str | None = None) -> str:
        """The session's name as the platform reports it ("" until read)."""
        held = self._logs.get(session_id or self.ids[0])
        return held.name if held is not None else ""

    def fetch_all(self, session_id: str | None = None) -> concurrent.futures.Future[str]:
        """The whole log, read from the platform now (nothing beyond the cap is kept here)."""
        feed = self._feeds[session_id or self.ids[0]]
        return self._spawn(feed.read_all(), action="Fetching the whole log")

    # -- polling ---------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        futures = [asyncio.wrap_future(feed.refresh_now()) for feed in self._feeds.values()]
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for sid, result in zip(self._feeds, results, strict=True):
            if not isinstance(result, BaseException) and sid not in self._subs:
                self._take(sid, result)
        if errors:
            raise errors[0]
        self._after_poll()

    def _start_following(self) -> None:
        if self._subs:
            return
        for sid, feed in self._feeds.items():
            self._sub_polls[sid] = feed.polls
            # Tracked: visible while a view is, closed with the widget.
            self._subs[sid] = self._track(feed, functools.partial(self._on_poll, sid))
        self._following = True
        self._runner.call_soon(lambda: self._update(following=True))

    def _stop_following(self) -> None:
        subs, self._subs = self._subs, {}
        for sub in subs.values():
            self._untrack(sub)
        if subs:
            self._following = False
            self._runner.call_soon(lambda: self._update(following=False))

    def _watch_follow(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._start_following()
        else:
            self._stop_following()

    def _on_poll(self, sid: str, value: LogState | None, error: BaseException | None) -> None:
        """A feed's callback (runner thread)."""
        feed = self._feeds[sid]
        if error is not None:
            message = self._scrub(feed.describe_failure(error, "Fetching logs"))
            self._update(error=message, status=message)
            if not self._initial.done():
                self._initial.set_exception(error)
            return
        if value is None:
            return
        self._take(sid, value)
        # Stop after one last poll made while subscribed (not a value handed over on subscribe).
        if value.finished and feed.polls > self._sub_polls.get(sid, 0) and sid in self._subs:
            self._untrack(self._subs.pop(sid))
        self._after_poll()

    def _after_poll(self) -> None:
        """Traits and messages once a value was taken (runner thread)."""
        held = self._logs
        self._update(
            states={sid: held[sid].state if sid in held else "Unknown" for sid in self.ids},
            names={sid: held[sid].name for sid in self.ids if sid in held and held[sid].name},
        )
        if not self._initial.done() and all(sid in held for sid in self.ids):
            self._initial.set_result(None)
        missing = [sid for sid in self.ids if sid in held and held[sid].missing]
        failed = [sid for sid in self.ids if sid in held and held[sid].read_failed]
        finished_now = self._following and not self._subs
        if finished_now:
            self._following = False
            self._update(following=False)
        if self._dirty or (not self._following and not finished_now):
            self._flush()
        elif finished_now:
            # Every view built this text from the appends (a view that missed one asked for a
            # resync): bring the kernel's traits up to date without sending the text again.
            self._flush(quiet=True)
        if failed:
            message = f"Fetching logs failed for {', '.join(self._label(s) for s in failed)}; showing the last text read."
            self._update(error=message, status=message)
            return
        self._mark_updated()
        notes = []
        if missing:
            notes.append(_not_found(missing))
        if finished_now and len(missing) < len(self.ids):
            notes.append(
                "All sessions have finished; these are their final logs."
                if len(self.ids) > 1
                else "The session has finished; these are its final logs."
            )
        if notes:
            self._update(status=" ".join(notes))

    def _label(self, sid: str) -> str:
        held = self._logs.get(sid)
        name = held.name if held is not None else ""
        return f"{name} ({sid})" if name and name != sid else sid

    # -- applying text ----------------------------------------------------------------------------

    _dirty = False

    def _take(self, sid: str, value: LogState) -> None:
        """Take a feed's value: send what was appended, or mark the text for a refresh."""
        old = self._logs.get(sid)
        self._logs[sid] = value  # shared with the feed and its other viewers: no copy
        if old is not None and old.end == value.end:
            return
        if old is not None and value.added and value.start == old.end:
            message = {"kind": "append", "id": sid, "text": value.added, "start": value.start}
            if value.skip:
                message["skip"] = value.skip  # what the cap left out before this text
            self.send(message)
            return
        self._dirty = True  # first text, replaced, or missed appends: views re-render

    def _flush(self, quiet: bool = False) -> None:
        """Refresh the ``texts``/``ends`` traits from what is kept (runner thread).

        ``quiet``: set them here only (the views already hold the same text), so a saved
        notebook or a later ``get_state`` has it without the front end getting it twice.
        """
        self._dirty = False
        held = self._logs
        values = {
            "texts": {sid: held[sid].text for sid in self.ids if sid in held},
            "ends": {sid: held[sid].end for sid in self.ids if sid in held},
            "dropped": {sid: held[sid].dropped for sid in self.ids if sid in held},
        }
        if not quiet:
            self._update(**values)
            return
        # ipywidgets does not send a value equal to a locked one (how it avoids echoing a
        # front-end change back); the traits are plain JSON, so they are their own state.
        with self._lock_property(**values):
            self._update(**values)

    # -- front-end messages -------------------------------------------------------------------------

    def _visibility_changed(self, visible: bool) -> None:
        if visible:
            self._runner.call_soon(self._flush)  # a view (maybe a new one) renders fresh state

    def _on_resync(self, content: dict[str, Any]) -> None:
        self._runner.call_soon(self._flush)

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    def _on_show_all(self, content: dict[str, Any]) -> None:
        """``{kind: "show_all", id}``: read the whole log once and hand it to the views."""
        sid = str(content.get("id") or self.ids[0])
        if sid not in self._feeds:
            return
        purpose = str(content.get("purpose") or "show")

        def send(future: concurrent.futures.Future[str]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            self.send({"kind": "all", "id": sid, "text": future.result(), "purpose": purpose})

        self.fetch_all(sid).add_done_callback(send)

    _messages: ClassVar[Messages] = {
        "resync": _on_resync,
        "refresh": _on_refresh,
        "show_all": _on_show_all,
    }  # plus "visibility"

    # -- representations ------------------------------------------------------------------------------

    def _summary(self) -> str:
        parts = []
        for sid in self.ids:
            text = self.text(sid)
            lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
            state = self.states.get(sid, "")
            parts.append(f"{self._label(sid)} {lines} lines" + (f" ({state})" if state else ""))
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
            text = strip_ansi(self.text(sid))
            lines = text.splitlines()
            shown = lines[-tail:]
            summary = f"Logs of {self._label(sid)}"
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
