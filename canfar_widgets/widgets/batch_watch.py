"""watch(): follow a batch of sessions to the end, as a widget and as an awaitable.

``watch(ids)`` returns a :class:`BatchWatch`: a progress widget (counts by state, a bar,
elapsed time) that updates from the shared session feed (one ``GET session`` listing per
poll, however many sessions the batch has), and whose :meth:`BatchWatch.wait` /
:meth:`BatchWatch.wait_async` return once every session has finished. A session that no
longer exists (deleted, or cleaned up by the platform) counts as finished: it is listed in
:attr:`BatchWatch.missing`.

``wait()`` blocks the cell (interruptible with Ctrl-C or the kernel's stop button) while
the widget keeps updating, because updates are sent from the runner thread; it works with
no view at all, as its own wait keeps the feed polling.

Example:
    >>> from canfar_widgets import Session, watch
    >>> session = Session()
    >>> ids = session.create("batch", image="skaha/terminal:1.1.2", cmd="sleep", args="30",
    ...                      replicas=10)
    >>> batch = watch(ids, session)
    >>> batch                       # shows progress
    >>> records = batch.wait()      # next cell: blocks until all are done
    >>> [r.state for r in records]
    ['Completed', 'Completed', ...]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import traitlets

from canfar_widgets import vocabulary
from canfar_widgets.batches import Batch
from canfar_widgets.errors import describe_error
from canfar_widgets.models import SessionRecord
from canfar_widgets.runner import explain_interrupt, get_runner
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets.batch_view import BatchView
from canfar_widgets.widgets.feed import Subscription
from canfar_widgets.widgets.log_viewer import _normalise_ids

__all__ = ["STATES", "BatchWatch", "watch"]

# The platform's states in lifecycle order, then "missing" (no longer known: finished too).
STATES = (*vocabulary.STATES, vocabulary.MISSING)
DONE_STATES = vocabulary.FINISHED_STATES | {vocabulary.MISSING}


def watch(ids: str | Iterable[str] | Batch, session: Any = None) -> Any:
    """Watch sessions ``ids`` (one id or a list, e.g. what ``session.create`` returned),
    or a :class:`~canfar_widgets.batches.Batch` (then the widget is its ``BatchView``).

    Example:
        >>> batch = watch(session.create("job", image="skaha/terminal:1.1.2", replicas=5))
        >>> batch.wait(timeout=3600)
        >>> watch(Batch.open("scan"))   # a recorded batch: names, reasons, Retry failed
    """
    if isinstance(ids, Batch):
        return BatchView.of(ids)
    return BatchWatch(ids, session)


class BatchWatch(CanfarWidget):
    """Progress of a batch of sessions; ``wait()`` until all have finished.

    Traits: ``ids``, ``states`` ``{id: state}``, ``counts`` ``{state: n}`` over
    :data:`STATES` (plus ``Unknown`` when the platform reports an odd status), ``total``,
    ``done`` (finished or missing), ``finished``, ``started_at`` (epoch seconds: the earliest
    session start known, else when watching began) and ``finished_at`` (0 until finished).

    The wait methods return the final :class:`~canfar_widgets.models.SessionRecord` of each
    session that still exists, in the order of ``ids``; missing ones are in :attr:`missing`.

    Example:
        >>> batch = BatchWatch(["q2w8e4r6", "k3x9ab2q"], session)
        >>> records = await batch.wait_async(timeout=600)
        >>> batch.counts["Completed"], batch.missing
        (2, [])
    """

    _entry = "batch_watch"

    ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    states = traitlets.Dict().tag(sync=True)
    labels = traitlets.Dict().tag(sync=True)
    """``{id: {"name": "scan-3", "replica": 3}}`` (replica 0 when the name has no number)."""
    counts = traitlets.Dict().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    done = traitlets.Int(0).tag(sync=True)
    finished = traitlets.Bool(False).tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    finished_at = traitlets.Float(0.0).tag(sync=True)

    def __init__(self, ids: str | Iterable[str], session: Any = None, **kwargs: Any) -> None:
        ids = _normalise_ids(ids)
        if not ids:
            raise ValueError("watch() needs at least one session id")
        super().__init__(
            ids=ids, total=len(ids), counts=_count({}, ids), started_at=time.time(), **kwargs
        )
        self._attach(session)
        self._records: dict[str, SessionRecord] = {}
        self._missing: set[str] = set()
        self._confirming = False
        self._waiters = 0
        self._lock = threading.Lock()
        self._done: concurrent.futures.Future[list[SessionRecord]] = concurrent.futures.Future()
        self._first: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._sub: Subscription | None = self._track(
            self.source.feed, self._on_feed, is_busy=self._waiting_on
        )

    # -- public --------------------------------------------------------------------------------------

    @property
    def missing(self) -> list[str]:
        """Ids the platform no longer knows (deleted or cleaned up); they count as finished."""
        return [i for i in self.ids if i in self._missing]

    @property
    def records(self) -> list[SessionRecord]:
        """The latest record of each session still known, in the order of ``ids``."""
        return [self._records[i] for i in self.ids if i in self._records]

    def wait(self, timeout: float | None = None) -> list[SessionRecord]:
        """Block until every session has finished; return their final records.

        Interruptible (Ctrl-C, the kernel's stop button); ``timeout`` seconds raise
        ``TimeoutError``. Works with no view displayed.
        """
        return get_runner().run(self._wait(), timeout=timeout)

    async def wait_async(self, timeout: float | None = None) -> list[SessionRecord]:
        """``await`` until every session has finished (from any event loop)."""
        return await get_runner().arun(asyncio.wait_for(self._wait(), timeout))

    def refresh(self) -> concurrent.futures.Future[Any]:
        """Poll the platform now."""
        return self.source.feed.refresh_now()

    # -- waiting -----------------------------------------------------------------------------------------

    async def _wait(self) -> list[SessionRecord]:
        if self._done.done():
            return self._done.result()
        # Explained from before the wait counts as one: a Ctrl-C landing while it starts
        # (the runner thread still between these lines) says its line, not a bare interrupt.
        with explain_interrupt(self._interrupted):
            with self._lock:
                self._waiters += 1
            self._sync_visibility()  # a wait keeps the feed polling even with no view on screen
            try:
                self.source.feed.refresh_now()
                # shield: a cancelled wait (Ctrl-C, timeout) must not cancel the shared result.
                return await asyncio.shield(asyncio.wrap_future(self._done))
            finally:
                with self._lock:
                    self._waiters -= 1
                self._sync_visibility()

    def _interrupted(self) -> str:
        """The one line an interrupted ``wait()`` shows."""
        return f"Interrupted: {self.done} of {self.total} finished; the jobs keep running."

    def _sync_visibility(self) -> None:
        sub = self._sub
        if sub is not None:
            sub.set_visible(self.visible or self._waiters > 0)

    def _visibility_changed(self, visible: bool) -> None:
        self._sync_visibility()  # a running wait() keeps polling when the last view hides

    def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            self._untrack(sub)

    # -- feed ---------------------------------------------------------------------------------------------

    def _waiting_on(self, records: list[SessionRecord]) -> bool:
        """Whether any of this batch's sessions is listed and not finished (keeps polls fast).

        A Running job is what a batch waits for, so the shared feed must not drop to its
        slow interval while one runs, as it would for a table of stable sessions.
        """
        mine = set(self.ids)
        return any(r.id in mine and getattr(r, "state", None) not in DONE_STATES for r in records)

    def _on_feed(self, records: list[SessionRecord] | None, error: BaseException | None) -> None:
        """SessionFeed callback (runner thread): every session of the user."""
        if error is not None:
            message = self._scrub(f"Checking the batch failed: {describe_error(error)}")
            self._update(error=message, status=message)
            return
        if records is None or self._done.done():
            return
        wanted = set(self.ids)
        for record in records:
            if record.id in wanted:
                self._records[record.id] = record
        listed = {r.id for r in records}
        absent = [i for i in self.ids if i not in listed and i not in self._missing]
        if absent and not self._confirming:
            # Not in the listing: just created (not listed yet) or gone? Ask for each.
            self._confirming = True
            self._runner.spawn(self._confirm(absent), on_error=self._confirm_failed)
            return
        if not absent:
            self._apply()

    async def _confirm(self, absent: list[str]) -> None:
        try:
            found = {r.id: r for r in await self.source.info(absent) if r.id}
        finally:
            self._confirming = False
        for sid in absent:
            if sid in found:
                self._records[sid] = found[sid]
            else:
                self._missing.add(sid)
                self._records.pop(sid, None)
        self._apply()

    def _confirm_failed(self, error: BaseException) -> None:
        message = self._scrub(f"Checking the batch failed: {describe_error(error)}")
        self._update(error=message, status=message)

    def _apply(self) -> None:
        states = {}
        for sid in self.ids:
            if sid in self._missing:
                states[sid] = vocabulary.MISSING
            elif sid in self._records:
                states[sid] = self._records[sid].state
            else:
                states[sid] = "Pending"  # created, not yet reported
        counts = _count(states, self.ids)
        done = sum(1 for s in states.values() if s in DONE_STATES)
        starts = [r.start.timestamp() for r in self._records.values() if r.start is not None]
        started = min([self.started_at, *starts])
        finished = done == len(self.ids)
        labels = {sid: _label(self._records[sid]) for sid in self.ids if sid in self._records}
        values: dict[str, Any] = {
            "states": states, "counts": counts, "done": done, "started_at": started,
            "labels": {**self.labels, **labels},
        }  # fmt: skip
        if finished and not self.finished:
            values.update(finished=True, finished_at=time.time())
        self._update(**values)
        self._mark_updated(_describe(counts, len(self.ids), finished))
        if not self._first.done():
            self._first.set_result(None)
        if finished and not self._done.done():
            self._unsubscribe()  # nothing more to see: stop polling for this batch
            self._done.set_result(self.records)

    # -- front-end messages ------------------------------------------------------------------------------

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    _messages: ClassVar[Messages] = {
        "refresh": _on_refresh
    }  # what the view sends (plus "visibility")

    # -- representations ------------------------------------------------------------------------------------

    def _summary(self) -> str:
        return _describe(self.counts, self.total, self.finished)

    def _static_html(self) -> str:
        counts = " · ".join(
            f"{_html.state_html('Missing' if state == vocabulary.MISSING else state)} {self.counts.get(state, 0)}"
            for state in STATES
            if self.counts.get(state, 0) or state in ("Pending", "Running", "Completed", "Failed")
        )
        end = self.finished_at or time.time()
        body = (
            f"<div><progress max='{self.total}' value='{self.done}'>{self.done}/{self.total}</progress> "
            f"{_html.esc(f'{self.done} of {self.total} finished')} · "
            f"{_html.esc('elapsed ' + _html.duration(end - self.started_at))}</div><div>{counts}</div>"
        )
        return _html.snapshot("Batch progress", body, error=self.error)


def _label(record: SessionRecord) -> dict[str, Any]:
    """A session's name and replica number (``scan-3`` is replica 3 of batch ``scan``)."""
    name = record.name or ""
    head, _, tail = name.rpartition("-")
    return {"name": name, "replica": int(tail) if head and tail.isdigit() else 0}


def _count(states: dict[str, str], ids: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for sid in ids:
        state = states.get(sid, "Pending")
        counts[state] = counts.get(state, 0) + 1
    return counts


def _describe(counts: dict[str, int], total: int, finished: bool) -> str:
    parts = [f"{counts[s]} {s}" for s in STATES if counts.get(s)]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in STATES and n]
    head = (
        f"All {total} finished"
        if finished
        else f"{sum(counts.get(s, 0) for s in DONE_STATES)} of {total} finished"
    )
    return f"{head}: {', '.join(parts)}" if parts else head
