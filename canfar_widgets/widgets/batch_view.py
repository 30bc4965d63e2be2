"""BatchView: follow a :class:`~canfar_widgets.batches.Batch`, see why replicas failed, act.

``display(batch)``, ``batch`` as a cell's last line, or ``watch(batch)`` show one. It has a
header (name, a bar of counts by state, elapsed time, an estimate of the time left from the
finished replicas' durations), a table with one row per replica (Replica, Name, Status,
Attempt, Duration, Reason; Logs and Events open below the table), the failures grouped by
reason and last error line (a group filters the table), and the buttons Retry failed,
Download logs (one zip, a file per replica) and Delete batch.

Data flow (docs/architecture.md, "Widget data flow"): the view follows the shared session
feed of the batch's session, so one ``GET session`` per poll serves this view, every other
widget on that session, and the batch (``Batch._refresh(listing)`` uses the feed's list).
Rows travel as patches (``{kind: "patch", version, upsert, remove}``, js/lib/patches.js):
a poll where three of 1,000 replicas changed sends three rows. A running replica's duration
is computed in the browser from its start, so the clock costs no traffic.

Example:
    >>> from canfar_widgets import Batch
    >>> batch = Batch.launch("scan", "skaha/astroml", cmd="python", args="scan.py",
    ...                      replicas=12)
    >>> view = BatchView(batch)     # or just `batch` as the last line of a cell
    >>> view.failures[0]["label"], view.failures[0]["count"]
    ('ValueError: bad frame 0017', 3)
"""

from __future__ import annotations

import io
import math
import threading
import time
import weakref
import zipfile
from collections.abc import Callable
from typing import Any, ClassVar

import traitlets

from canfar_widgets.batches import Batch, _reasons
from canfar_widgets.errors import describe_error
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets._patches import patch_message, send_snapshot
from canfar_widgets.widgets._source import SessionSource

__all__ = ["BatchView", "failure_groups"]

# The statuses a batch's replicas can have, in the order the bar and legend show them.
STATUSES = (
    "Completed",
    "Failed",
    "Deleted",
    "Gone",
    "Terminating",
    "Running",
    "Pending",
    "Launching",
    "Unknown",
)
ACTIVE = frozenset({"Launching", "Unknown", "Pending", "Running", "Terminating"})


def failure_groups(errors: list[Any]) -> list[dict[str, Any]]:
    """Failed replicas grouped by reason plus last error line, largest group first.

    ``label`` is what a person reads: the error line when the job exited with an error,
    else the reason ("out of memory", "image pull failure").

    Example:
        >>> [(g["count"], g["label"]) for g in failure_groups(batch.errors())]
        [(3, 'ValueError: bad frame in field-017.fits'), (1, 'out of memory')]
    """
    groups: dict[str, dict[str, Any]] = {}
    for row in errors:
        reason, line = row.reason or _reasons.NON_ZERO_EXIT, row.last_line or ""
        key = f"{reason}\n{line}"
        group = groups.get(key)
        if group is None:
            exited = reason.startswith(_reasons.NON_ZERO_EXIT)
            label = line if (exited and line) else reason
            group = groups[key] = {
                "key": key,
                "reason": reason,
                "line": line,
                "label": label,
                "count": 0,
                "replicas": [],
            }
        group["count"] += 1
        group["replicas"].append(row.replica)
    return sorted(groups.values(), key=lambda g: (-g["count"], g["replicas"][0]))


def describe_failures(groups: list[dict[str, Any]]) -> str:
    """``"4 failed: 3 × ValueError: bad frame 7, 1 × out of memory"`` ("" when none)."""
    total = sum(g["count"] for g in groups)
    if not total:
        return ""
    return f"{total} failed: " + ", ".join(f"{g['count']} × {g['label']}" for g in groups)


# One live view per batch, kept only while the batch lives.
_VIEWS: weakref.WeakKeyDictionary[Batch, BatchView] = weakref.WeakKeyDictionary()


def show_batch(batch: Batch) -> None:
    """IPython's display of a ``Batch``: its live :class:`BatchView`.

    Registered by :func:`canfar_widgets.register_displays`, so ``canfar_widgets.batches``
    never imports the widget layer: the widgets come to the batch, not the other way round.
    """
    from IPython.display import display

    display(BatchView.of(batch))


class BatchView(CanfarWidget):
    """A live view of one :class:`~canfar_widgets.batches.Batch`; see the module docstring.

    Kernel-owned traits: ``name``, ``total``, ``counts``, ``done``, ``finished``,
    ``started_at``/``finished_at`` (epoch seconds), ``eta_at`` (epoch seconds the estimate
    says the batch ends; 0 when it cannot say yet), ``failures`` (groups, see
    :func:`failure_groups`), ``failed``, ``retry_reason`` (why Retry is disabled; "" when
    it is not), ``message`` (what the last action did), ``detail`` (the open log or events).
    Front-end-owned: ``notify`` (the "Notify me" choice), ``group`` (the selected failure
    group's key; "" shows every row).

    Example:
        >>> view = BatchView(batch)
        >>> view.retry_failed().result(timeout=60)   # what the button does, confirmed
        [3, 5, 8, 11]
    """

    @classmethod
    def of(cls, batch: Batch) -> BatchView:
        """This batch's view, made once (a closed view is replaced by a new one).

        Example:
            >>> BatchView.of(batch) is BatchView.of(batch)
            True
        """
        view = _VIEWS.get(batch)
        if view is None or view.comm is None:
            view = _VIEWS[batch] = cls(batch)
        return view

    _entry = "batch_view"

    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows_version = traitlets.Int(0).tag(sync=True)
    name = traitlets.Unicode("").tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)
    done = traitlets.Int(0).tag(sync=True)
    finished = traitlets.Bool(False).tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    finished_at = traitlets.Float(0.0).tag(sync=True)
    eta_at = traitlets.Float(0.0).tag(sync=True)
    failures = traitlets.List(traitlets.Dict()).tag(sync=True)
    failed = traitlets.Int(0).tag(sync=True)
    retry_reason = traitlets.Unicode("").tag(sync=True)
    destroyed = traitlets.Bool(False).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)
    notify = traitlets.Bool(False).tag(sync=True)
    group = traitlets.Unicode("").tag(sync=True)

    def __init__(self, batch: Batch, **kwargs: Any) -> None:
        if not isinstance(batch, Batch):
            raise TypeError(f"BatchView: expected a Batch, not {type(batch).__name__}")
        super().__init__(name=batch.name, total=batch.total, started_at=time.time(), **kwargs)
        self.batch = batch
        self._attach(_source_for(batch._session))
        self._rows_lock = threading.RLock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._version = 0
        self._polling = False
        self._again = False
        self._next: list[dict[str, Any]] = []
        self._seen_finished: bool | None = None
        self._seen_failed: int | None = None
        self._message_clears: Callable[[], bool] | None = None
        self._apply()
        self._sub = self._track(
            self.source.feed, self._on_feed, is_busy=lambda _records: not batch.finished
        )
        self.observe(lambda _change: self._sync_visibility(), names="notify")
        self.source.feed.refresh_now()

    # -- public --------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> list[Any]:
        """Block until the batch has finished (``Batch.wait``); returns its replicas."""
        return self.batch.wait(timeout)

    def refresh(self) -> Any:
        """Poll now (one listing for every widget on this session); returns the future."""
        return self.source.feed.refresh_now()

    def retry_failed(self) -> Any:
        """Re-run the failed replicas (``batch.rerun()``); the future gets their numbers."""
        return self._spawn(self._retry(), action="Retry failed", busy=True)

    def download_logs(self) -> Any:
        """Build the logs zip and send it to the browser; the future gets the zip's bytes."""
        return self._spawn(self._download(), action="Download logs", busy=True)

    def delete(self) -> Any:
        """Delete every session of the batch (``batch.destroy()``); the record stays."""
        return self._spawn(self._delete(), action="Delete batch", busy=True)

    def show(self, view: str, replica: int) -> Any:
        """Open ``"logs"`` or ``"events"`` of ``replica`` below the table; returns the future."""
        if view not in ("logs", "events"):
            raise ValueError(f"view: must be 'logs' or 'events', not {view!r}")
        if not isinstance(replica, int) or not 1 <= replica <= self.total:
            raise ValueError(f"replica: {replica!r} is not a replica number (1 to {self.total})")
        name = self.batch._name_of(replica)
        self._update(
            detail={"view": view, "replica": replica, "name": name, "text": "", "loading": True}
        )
        return self._spawn(self._show(view, replica, name), action=f"Loading {view}")

    # -- polling ---------------------------------------------------------------------------------

    def _on_feed(self, records: Any, error: BaseException | None) -> None:
        """Shared feed callback (runner thread): refresh the batch from the feed's listing."""
        if error is not None:
            self._update(error=self._scrub(f"Checking the batch failed: {describe_error(error)}"))
            return
        if records is None:
            return
        listing = [r.model_dump(exclude_none=True) for r in records]
        if self._polling:
            self._again = True  # one refresh at a time; the latest listing is used next
            self._next = listing
            return
        self._polling = True
        self._runner.spawn(self._poll(listing), on_error=self._poll_failed)

    def _sync_visibility(self) -> None:
        # "Notify me" is for when nobody looks (a background tab reports its views hidden):
        # until the batch ends, keep polling so its finish can be announced.
        self._sub.set_visible(self.visible or (self.notify and not self.batch.finished))

    def _visibility_changed(self, visible: bool) -> None:
        self._sync_visibility()

    async def _poll(self, listing: list[dict[str, Any]]) -> None:
        try:
            while True:
                await self.batch._refresh(listing)
                self._apply()
                self._mark_updated()
                if not self._again:
                    return
                self._again = False
                listing = self._next
        finally:
            self._polling = False
            self._sync_visibility()  # finished: a hidden view need not poll any more

    def _poll_failed(self, error: BaseException) -> None:
        self._update(error=self._scrub(f"Checking the batch failed: {describe_error(error)}"))

    def _apply(self) -> None:
        """Diff the batch's replicas against the rows we hold; one patch with what changed."""
        batch = self.batch
        replicas = batch.replicas
        lines = {row.replica: row.last_line for row in batch.errors()}
        now = time.time()
        with self._rows_lock:
            upsert = []
            for replica in replicas:
                row = _row(replica, lines.get(replica.replica, ""))
                if self._rows.get(row["id"]) != row:
                    self._rows[row["id"]] = row
                    upsert.append(row)
            if upsert:
                self._version += 1
                self.send(patch_message(self._version, upsert, remove=[]))
        counts = {s: n for s, n in batch.counts.items() if n}
        groups = failure_groups(batch.errors())
        failed = sum(1 for r in replicas if r.status == "Failed")
        finished = batch.finished
        starts = [r.started.timestamp() for r in replicas if r.started is not None]
        ends = [r.ended.timestamp() for r in replicas if r.ended is not None]
        values: dict[str, Any] = {
            "counts": counts,
            "failures": groups,
            "failed": failed,
            "finished": finished,
            "done": sum(1 for r in replicas if r.status not in ACTIVE),
            "started_at": min(starts) if starts else batch.created.timestamp(),
            "finished_at": max(ends) if finished and ends else 0.0,
            "eta_at": 0.0 if finished else _eta(replicas, now),
            "retry_reason": self._why_no_retry(failed),
            "destroyed": batch._row.destroyed is not None,
        }
        if self.group and not any(g["key"] == self.group for g in groups):
            values["group"] = ""  # that group is gone (re-run): show every row again
        clears = self._message_clears
        if clears is not None and clears():
            values["message"] = ""
            self._message_clears = None
        self._update(**values)
        self._alert(finished, failed, counts, groups)

    def _why_no_retry(self, failed: int) -> str:
        row = self.batch._row
        if row.destroyed is not None:
            return "The batch was deleted; its record stays, but it is not re-run."
        if not failed:
            return "Nothing failed."
        if not row.spec_known:
            return (
                "This batch was rebuilt from the platform, which does not say its "
                "command: use batch.rerun(cmd=...) in a cell."
            )
        if row.registry_user and self.batch._registry is None:
            return (
                "Its image needs registry credentials: use "
                "batch.rerun(registry=ContainerRegistry(...)) in a cell."
            )
        return ""

    def _alert(
        self, finished: bool, failed: int, counts: dict[str, int], groups: list[dict[str, Any]]
    ) -> None:
        """Tell the views of a finish or a first failure (they notify, if the user asked)."""
        first_look = self._seen_finished is None
        was_finished, had_failed = self._seen_finished, self._seen_failed or 0
        self._seen_finished, self._seen_failed = finished, failed
        if first_look:
            return  # what was already so when the view opened is not news
        if finished and not was_finished:
            words = ", ".join(f"{n} {s}" for s, n in counts.items())
            self.send(
                {
                    "kind": "alert",
                    "event": "finished",
                    "tag": f"batch-{self.name}",
                    "title": f"Batch {self.name} finished",
                    "body": words,
                }
            )
        elif failed and not had_failed:
            label = groups[0]["label"] if groups else ""
            self.send(
                {
                    "kind": "alert",
                    "event": "failed",
                    "tag": f"batch-{self.name}-failed",
                    "title": f"Batch {self.name}: a replica failed",
                    "body": f"{failed} of {self.total} failed" + (f": {label}" if label else ""),
                }
            )

    # -- actions ----------------------------------------------------------------------------------

    def _say(self, text: str, clears: Callable[[], bool] | None = None) -> None:
        """One message per action: it replaces the last one, and goes when ``clears()``."""
        self._message_clears = clears
        self._update(message=text, error="")

    async def _retry(self) -> list[int]:
        reason = self._why_no_retry(sum(1 for r in self.batch.replicas if r.status == "Failed"))
        if reason:
            self._say(f"Nothing re-run: {reason}")
            return []
        launched = [r.replica for r in await self.batch.rerun_async()]
        numbers = set(launched)

        def settled() -> bool:
            return all(r.status not in ACTIVE for r in self.batch.replicas if r.replica in numbers)

        plural = "s" if len(launched) != 1 else ""
        self._say(
            f"Re-running {len(launched)} failed replica{plural}: {', '.join(map(str, launched))}.",
            clears=settled,
        )
        self._apply()
        self.source.feed.refresh_now()
        return launched

    async def _download(self) -> bytes:
        texts = await self.batch._texts("logs", None)
        width = len(str(self.total))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for number, text in texts.items():
                name = self.batch._name_of(number)
                archive.writestr(f"{self.name}-logs/replica-{number:0{width}d}_{name}.log", text)
        data = buffer.getvalue()
        filename = f"{self.name}-logs.zip"
        self.send(
            {"kind": "download", "filename": filename, "mime": "application/zip"}, buffers=[data]
        )
        empty = sum(1 for t in texts.values() if not t)
        note = f" ({empty} empty: not started, or no log kept)" if empty else ""
        self._say(f"Downloaded {filename}: {len(texts)} logs, {_size(len(data))}{note}.")
        return data

    async def _delete(self) -> dict[int, bool]:
        result = await self.batch.destroy_async()
        gone = sum(1 for ok in result.values() if ok)
        failed = [n for n, ok in result.items() if not ok]
        text = (
            f"Deleted {gone} session{'s' if gone != 1 else ''} of batch {self.name}; its "
            f"record, logs and events stay (Batch.open({self.name!r}))."
        )
        if failed:
            text += f" Could not delete replicas {', '.join(map(str, failed))}."
        self._say(text)
        self._apply()
        self.source.feed.refresh_now()
        return result

    async def _show(self, view: str, replica: int, name: str) -> None:
        texts = await self.batch._texts(view, [replica])
        current = self.detail
        if current.get("replica") != replica or current.get("view") != view:
            return  # another row was opened meanwhile
        self._update(
            detail={
                "view": view,
                "replica": replica,
                "name": name,
                "text": texts.get(replica, ""),
                "loading": False,
            }
        )

    # -- front-end messages --------------------------------------------------------------------------

    def _on_snapshot(self, content: dict[str, Any]) -> None:
        have = content.get("have")
        with self._rows_lock:
            send_snapshot(self, self._rows, self._version, have)

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    def _on_retry(self, content: dict[str, Any]) -> None:
        self.retry_failed()

    def _on_download(self, content: dict[str, Any]) -> None:
        self.download_logs()

    def _on_delete(self, content: dict[str, Any]) -> None:
        self.delete()

    def _on_open(self, content: dict[str, Any]) -> None:
        self.show(str(content.get("view")), int(content.get("replica") or 0))

    def _on_close_detail(self, content: dict[str, Any]) -> None:
        self._update(detail={})

    def _on_dismiss(self, content: dict[str, Any]) -> None:
        self._message_clears = None
        self._update(message="")

    _messages: ClassVar[Messages] = {
        "snapshot": _on_snapshot, "refresh": _on_refresh, "retry": _on_retry,
        "download": _on_download, "delete": _on_delete, "open": _on_open,
        "close_detail": _on_close_detail, "dismiss": _on_dismiss,
    }  # fmt: skip

    # -- representations -----------------------------------------------------------------------------

    def _summary(self) -> str:
        words = ", ".join(f"{n} {s}" for s, n in self.counts.items())
        head = f"batch {self.name}: {self.done} of {self.total} finished"
        return f"{head} ({words})" if words else head

    def _static_html(self) -> str:
        counts = " · ".join(f"{_html.state_html(s)} {n}" for s, n in self.counts.items())
        failures = describe_failures(self.failures)
        rows = "".join(
            f"<tr><td>{r['replica']}</td><td>{_html.esc(r['name'])}</td>"
            f"<td>{_html.state_html(r['status'])}</td><td>{r['attempt']}</td>"
            f"<td>{_html.esc(r['reason'])}</td></tr>"
            for r in sorted(self._rows.values(), key=lambda r: r["replica"])[:200]
        )
        body = (
            f"<div>{_html.esc(f'{self.done} of {self.total} finished')} · {counts}</div>"
            + (f"<div>{_html.esc(failures)}</div>" if failures else "")
            + "<table><thead><tr><th>Replica</th><th>Name</th><th>Status</th>"
            f"<th>Attempt</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        return _html.snapshot(f"Batch {self.name}", body, error=self.error)


def _source_for(client: Any) -> SessionSource:
    """The source other widgets use for this batch's session, so they share one feed.

    A batch holds the ``AsyncSession`` behind the ``Session`` it was given; a SessionTable
    made with that ``Session`` has the source keyed by the ``Session``. Find it.
    """
    with SessionSource._cache_lock:
        sources = [ref() for ref in SessionSource._cache.values()]
        default = SessionSource._default
    for source in [default, *sources]:
        session = getattr(source, "session", None)
        if session is client or getattr(session, "async_session", None) is client:
            assert source is not None
            return source
    return SessionSource.of(client)


def _row(replica: Any, last_line: str) -> dict[str, Any]:
    return {
        "id": str(replica.replica),
        "replica": replica.replica,
        "name": replica.name,
        "status": replica.status,
        "attempt": replica.attempt,
        "session": replica.id or "",
        "started": replica.started.timestamp() if replica.started else None,
        "ended": replica.ended.timestamp() if replica.ended else None,
        "reason": replica.reason,
        "line": last_line,
    }


def _eta(replicas: list[Any], now: float) -> float:
    """When the batch should end (epoch seconds), from the completed replicas' durations.

    The mean duration of those that completed; a running replica needs the rest of it, the
    waiting ones that long each, as many at once as run now. 0 when nothing completed yet.
    """
    durations = [r.duration for r in replicas if r.status == "Completed" and r.duration]
    if not durations:
        return 0.0
    mean = sum(durations) / len(durations)
    running = [r for r in replicas if r.status in ("Running", "Terminating")]
    waiting = sum(1 for r in replicas if r.status in ("Launching", "Unknown", "Pending"))
    left = max([max(0.0, mean - (r.duration or 0.0)) for r in running] or [0.0])
    if waiting:
        left += math.ceil(waiting / max(1, len(running))) * mean
    return now + left


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"
