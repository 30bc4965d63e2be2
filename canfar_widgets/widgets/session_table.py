"""SessionTable: the live table of your CANFAR sessions.

One ``<tr>`` per session (name, id, kind, status, image, CPU/RAM used and requested,
start, time left) with compact Connect / Logs / Events / Renew / Keep alive / Delete
buttons, filters, sorting (names in natural order: job-2 before job-10), multi-select
and bulk actions. The view drops low-value columns first when the notebook is narrow and
puts only the rows on screen in the DOM once there are hundreds (see js/session_table.js). It refreshes itself from the session object's shared
:class:`~canfar_widgets.widgets._source.SessionFeed`: every 2 s while anything is Pending
or Terminating, every 15 s when all is stable, not at all while no view is on screen,
and never after ``close()``.

Traffic is proportional to what changed, not to the table: rows are kept here keyed
by id with a version counter, and only changed rows go to the front end as a
``{kind: "patch", version, upsert, remove}`` message. A view asks for the full list
(the ``rows`` trait) when it renders or notices a missing version.

Example:
    >>> from canfar_widgets import SessionTable
    >>> table = SessionTable()                 # Session() from CANFAR_URL/CANFAR_TOKEN/config
    >>> table                                  # shows the live table
    >>> table.search = "batch-"                # filters are traits, set from Python too
    >>> table.refresh().result()               # poll now; returns the SessionRecords
    >>> table.delete(table.selected)           # act on what the user ticked
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
import weakref
from datetime import datetime
from typing import Any, ClassVar

import traitlets

from canfar_widgets.errors import describe_error
from canfar_widgets.keep_alive import CHECK_SECONDS, MARGIN_SECONDS, KeepAlive
from canfar_widgets.models import SessionRecord
from canfar_widgets.vocabulary import STATES
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets._patches import patch_message, send_snapshot
from canfar_widgets.widgets.capacity import format_gib, gib_from_gb
from canfar_widgets.widgets.events_view import EventsView
from canfar_widgets.widgets.log_viewer import LogViewer

__all__ = ["SessionTable", "natural_key", "row_of"]

log = logging.getLogger(__name__)

try:  # anywidget >= 0.11: children render through the front end's `host.getWidget`.
    from anywidget import WidgetTrait as _ChildTrait

    def _child_trait() -> traitlets.TraitType:
        return _ChildTrait().tag(sync=True)

except ImportError:  # pragma: no cover - older anywidget: plain ipywidgets references
    from ipywidgets import Widget, widget_serialization

    def _child_trait() -> traitlets.TraitType:
        return traitlets.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)


# "Updated hh:mm:ss" is refreshed at most this often when nothing changed, so a quiet
# poll sends nothing (a manual Refresh or any change always updates it).
HEARTBEAT_SECONDS = 60.0
# How long repr waits for the first poll so the static snapshot is not empty.
SNAPSHOT_WAIT_SECONDS = 1.5
# An action's outcome ("Deleted 5 sessions.") is news for this long, then it is cleared:
# an old message beside a new state reads as if it were still true.
STATUS_SECONDS = 10.0
SORT_COLUMNS = ("name", "id", "kind", "status", "image", "cpu", "ram", "start", "expiry")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _epoch(moment: Any) -> float | None:
    return None if moment is None else round(moment.timestamp(), 3)


def short_image(image: str | None) -> str:
    """``images.canfar.net/skaha/astroml:24.10`` -> ``astroml:24.10``."""
    if not image:
        return ""
    base = image.split("@", 1)[0]
    return base.rsplit("/", 1)[-1] or image


def row_of(record: SessionRecord) -> dict[str, Any]:
    """The small dict the front end gets for one session (computed once per change).

    Example:
        >>> row_of(SessionRecord.model_validate({"id": "abc", "status": "Running"}))["status"]
        'Running'
    """
    return {
        "id": record.id or "",
        "name": record.name or "",
        "kind": record.type or "",
        "status": record.state,
        "status_text": record.status or "",
        "image": record.image or "",
        "image_short": short_image(record.image),
        "cpu_req": _round(record.requested_cores),
        "cpu_used": _round(record.cpu_in_use),
        # GiB, the unit a person asked for in the form (the platform reports decimal GB).
        "ram_req": _round(gib_from_gb(record.requested_ram_gb)),
        "ram_used": _round(gib_from_gb(record.ram_in_use_gb)),
        "start": _epoch(record.start),
        "expiry": _epoch(record.expiry),
        "url": record.connectURL or "",
        "finished": record.finished,
    }


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that reads digit runs as numbers: ``job-2`` before ``job-10``.

    Example:
        >>> sorted(["job-10", "job-2", "Job-1"], key=natural_key)
        ['Job-1', 'job-2', 'job-10']
    """
    # re.split with a group alternates text, number, text...: positions never mix types.
    parts = re.split(r"(\d+)", text.casefold())
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def _sort_value(row: dict[str, Any], key: str) -> Any:
    if key == "cpu":
        return row.get("cpu_req")
    if key == "ram":
        return row.get("ram_req")
    if key == "image":
        return (row.get("image_short") or "").lower()
    if key == "name":
        return natural_key(row.get("name") or "")
    if key == "status":
        status = row.get("status")
        return STATES.index(status) if status in STATES else len(STATES)
    return row.get(key)


class SessionTable(CanfarWidget):
    """A live, sortable, filterable table of your sessions with row and bulk actions.

    Args:
        session: this package's ``Session``/``AsyncSession`` or an official ``canfar``
            one; default ``Session()`` from the environment / ``~/.canfar/config.yaml``.
            Widgets given the same session object share one poller.
        **traits: initial filters, e.g. ``SessionTable(kind_filter="headless", hide_finished=False)``.

    Front-end-owned traits (set them from Python too): ``kind_filter``, ``status_filter``,
    ``search``, ``hide_finished`` (default False; when on, finished headless jobs are
    hidden except those this table saw running), ``sort_by``, ``sort_desc``,
    ``selected`` (ids ticked).

    Kernel-owned: ``renewed`` (``{id: new expiry}`` after a renew, shown as a date),
    ``kept_alive`` (``{id: until}`` for sessions kept alive, see :meth:`keep_alive`).

    Example:
        >>> table = SessionTable(session, status_filter="Running")
        >>> table.records[0].name
        'notebook-1'
    """

    _entry = "session_table"

    # Full row list, answered on a view's request; patches carry changes in between.
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows_version = traitlets.Int(0).tag(sync=True)

    kind_filter = traitlets.Unicode("").tag(sync=True)
    status_filter = traitlets.Unicode("").tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    hide_finished = traitlets.Bool(False).tag(sync=True)
    sort_by = traitlets.Unicode("start").tag(sync=True)
    sort_desc = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    notify = traitlets.Bool(False).tag(sync=True)
    """The "Notify me" choice (front end, js/lib/notify.js): alert when a session runs or nears expiry."""

    pending = traitlets.Dict().tag(sync=True)
    """``{id: "Deleting…"}`` while an action on that row runs (its buttons are disabled)."""
    detail = _child_trait()
    """The LogViewer / EventsView shown under a row, or None."""
    detail_id = traitlets.Unicode("").tag(sync=True)
    detail_kind = traitlets.Unicode("").tag(sync=True)
    renewed = traitlets.Dict().tag(sync=True)
    """``{id: epoch}``: the new expiry of sessions renewed from this table."""
    kept_alive = traitlets.Dict().tag(sync=True)
    """``{id: epoch}``: sessions this table keeps alive, and until when."""

    def __init__(self, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._attach(session)
        self._rows_lock = threading.RLock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._records: dict[str, SessionRecord] = {}
        self._version = 0
        self._heartbeat_due = False
        # Whose message `error` holds: a poll's clears on the next good poll; an action's
        # ("Could not delete x") stays until the next action or a press of Refresh.
        self._error_from_poll = False
        # Ids this table saw unfinished: "Hide finished" never hides a job watched running.
        self._watched: set[str] = set()
        # Until a view asks for rows, patches would only be re-sent as the `rows` trait
        # (twice the bytes): the first view's snapshot carries them instead.
        self._viewed = False
        self._status_token = 0
        self._keepers: dict[str, KeepAlive] = {}
        self._first = threading.Event()
        self._sub = self._track(self.feed, self._on_feed)
        self.observe(lambda _change: self._sync_visibility(), names="notify")

    @property
    def feed(self):
        """The shared :class:`SessionFeed` this table follows."""
        return self.source.feed

    # -- public API -------------------------------------------------------------------------

    @property
    def records(self) -> list[SessionRecord]:
        """The sessions as last polled (all of them, whatever the filters)."""
        with self._rows_lock:
            return list(self._records.values())

    def refresh(self) -> concurrent.futures.Future:
        """Poll now (for every widget on this session); the future gets the records."""
        return self.feed.refresh_now()

    def delete(self, ids: str | list[str]) -> concurrent.futures.Future:
        """Delete sessions (no confirmation: that is the front end's job); future -> ``{id: ok}``."""
        ids = _id_list(ids)
        return self._spawn(self._act("delete", ids), action="Delete")

    def renew(self, ids: str | list[str]) -> concurrent.futures.Future:
        """Reset sessions' expiry; future -> ``{id: ok}``."""
        ids = _id_list(ids)
        return self._spawn(self._act("renew", ids), action="Renew")

    def keep_alive(
        self,
        ids: str | list[str],
        until: datetime | float | None,
        *,
        margin: float = MARGIN_SECONDS,
        check_every: float = CHECK_SECONDS,
    ) -> KeepAlive | None:
        """Keep interactive sessions alive until ``until`` (None: stop keeping them alive).

        Renews each when less than ``margin`` seconds (an hour) is left, up to ``until``;
        the table shows "kept alive until ..." on their rows (the ``kept_alive`` trait).
        A table's keep-alives stop when it is closed. Returns the running
        :class:`~canfar_widgets.keep_alive.KeepAlive` (or None when stopping).

        Example:
            >>> keeper = table.keep_alive("k3x9ab2q", until=datetime(2026, 12, 24, 18, 0))
            >>> table.kept_alive
            {'k3x9ab2q': 1798131600.0}
        """
        ids = _id_list(ids)
        for sid in ids:
            old = self._keepers.pop(sid, None)
            if old is not None and old not in self._keepers.values():
                old.stop()
        if until is None:
            self._update(kept_alive={k: v for k, v in self.kept_alive.items() if k not in ids})
            return None
        keeper = KeepAlive(
            ids,
            until,
            info=self.source.info,
            renew=self.source.renew,
            margin=margin,
            check_every=check_every,
        ).start()
        self._keepers.update(dict.fromkeys(ids, keeper))
        self._update(kept_alive={**self.kept_alive, **dict.fromkeys(ids, keeper.until)})
        ref = weakref.ref(self)

        def ended(_future: Any) -> None:  # at `until`, on stop, or when nothing is left to renew
            table = ref()
            if table is None or table.comm is None:
                return
            mine = [sid for sid, k in list(table._keepers.items()) if k is keeper]
            for sid in mine:
                table._keepers.pop(sid, None)
            if mine:
                table._update(
                    kept_alive={k: v for k, v in table.kept_alive.items() if k not in mine}
                )

        assert keeper._future is not None
        keeper._future.add_done_callback(ended)
        return keeper

    def show_logs(self, session_id: str) -> Any:
        """Open the LogViewer for ``session_id`` under its row; returns the viewer."""
        return self._show_detail(session_id, "logs")

    def show_events(self, session_id: str) -> Any:
        """Open the EventsView for ``session_id`` under its row; returns the view."""
        return self._show_detail(session_id, "events")

    def hide_detail(self) -> None:
        """Close the inline LogViewer / EventsView."""
        child = self.detail
        with self.hold_sync():
            self.detail = None
            self.detail_id = ""
            self.detail_kind = ""
        if child is not None:
            child.close()

    def close(self) -> None:
        """Stop following the feed and close the table (and its inline child, and keep-alives)."""
        for keeper in set(getattr(self, "_keepers", {}).values()):
            keeper.stop()
        child = getattr(self, "detail", None)
        if child is not None:
            child.close()
        super().close()

    # -- feed -------------------------------------------------------------------------------

    def _sync_visibility(self) -> None:
        # "Notify me" is for when nobody looks (a background tab reports its views hidden):
        # keep the feed subscription alive so "Running" / "expires soon" can still be
        # announced; the feed's own backoff keeps that at its slow or idle interval.
        self._sub.set_visible(self.visible or self.notify)

    def _visibility_changed(self, visible: bool) -> None:
        self._sync_visibility()

    def _on_feed(self, records: list[SessionRecord] | None, error: BaseException | None) -> None:
        """Runs on the runner thread after every poll of the shared feed."""
        changed = False
        self._first.set()  # answered, well or badly: repr need not wait any more
        if records is not None:
            changed = self._apply(records)
        if error is not None:
            message = self._scrub(self.feed.describe_failure(error, "Updating sessions"))
            self._error_from_poll = True
            self._update(error=message)
        else:
            now = time.time()
            force, self._heartbeat_due = self._heartbeat_due, False
            clear = self._error_from_poll or force
            if changed or force or clear or now - self.last_updated >= HEARTBEAT_SECONDS:
                self._error_from_poll = False
                values: dict[str, Any] = {"last_updated": now}
                if clear:
                    values["error"] = ""
                self._update(**values)

    def _apply(self, records: list[SessionRecord]) -> bool:
        """Diff ``records`` against the rows we hold; send one patch if anything changed.

        Unchanged records are the same objects as last poll (the source reuses them), so
        a quiet poll of 1,000 sessions is 1,000 identity checks.
        """
        with self._rows_lock:
            old = self._records
            fresh: dict[str, SessionRecord] = {}
            upsert: list[dict[str, Any]] = []
            for record in records:
                key = record.id
                if not key:
                    continue
                fresh[key] = record
                if old.get(key) is record:
                    continue
                row = row_of(record)
                if not row["finished"]:
                    self._watched.add(key)
                row["watched"] = key in self._watched
                if self._rows.get(key) != row:
                    self._rows[key] = row
                    upsert.append(row)
            remove = [key for key in self._rows if key not in fresh]
            for key in remove:
                del self._rows[key]
                self._watched.discard(key)
            self._records = fresh
            if not upsert and not remove:
                return False
            self._version += 1
            # Sent under the lock so patches and snapshots reach the front end in order.
            if self._viewed:
                self.send(patch_message(self._version, upsert, remove))
        # An open LogViewer stays even if its session is gone: its text may still be wanted.
        return True

    # -- front-end messages -------------------------------------------------------------------

    def _on_snapshot(self, content: dict[str, Any]) -> None:
        """A view wants the full list (on render, or after it missed a patch)."""
        have = content.get("have")
        with self._rows_lock:
            self._viewed = True
            send_snapshot(self, self._rows, self._version, have)

    def _show_error(self, action: str, exc: BaseException) -> None:
        self._error_from_poll = False
        message = self._scrub(f"{action} failed: {describe_error(exc)}")
        log.info("%s: %s", type(self).__name__, message)
        # Said once, in the alert; the status line does not repeat it.
        self._update(error=message, status="")

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self._heartbeat_due = True
        self._spawn(self._refresh_busy(), action="Refresh")

    async def _refresh_busy(self) -> None:
        self._update(busy=True, status="Refreshing…")
        try:
            await asyncio.wrap_future(self.feed.refresh_now())
        except Exception:  # said once, by _on_feed, in `error`: not again in the status
            pass
        finally:
            self._update(status="")
            self._update(busy=False)

    def _on_delete(self, content: dict[str, Any]) -> None:
        self.delete(_id_list(content.get("ids") or []))

    def _on_renew(self, content: dict[str, Any]) -> None:
        self.renew(_id_list(content.get("ids") or []))

    def _on_detail(self, content: dict[str, Any]) -> None:
        session_id = str(content.get("id") or "")
        kind = str(content.get("view") or "logs")
        if self.detail_id == session_id and self.detail_kind == kind:
            self.hide_detail()  # the same button again closes it
        else:
            self._show_detail(session_id, kind)

    def _on_close_detail(self, content: dict[str, Any]) -> None:
        self.hide_detail()

    def _on_keep_alive(self, content: dict[str, Any]) -> None:
        until = content.get("until")
        self.keep_alive(_id_list(content.get("ids") or []), None if until is None else float(until))
        if until is not None:
            self._say(f"Keeping {self._names(_id_list(content.get('ids') or []))} alive.")

    # What the view sends (plus "visibility", handled by CanfarWidget).
    _messages: ClassVar[Messages] = {
        "snapshot": _on_snapshot,
        "refresh": _on_refresh,
        "delete": _on_delete,
        "renew": _on_renew,
        "detail": _on_detail,
        "close_detail": _on_close_detail,
        "keep_alive": _on_keep_alive,
    }

    # -- actions ----------------------------------------------------------------------------

    async def _act(self, verb: str, ids: list[str]) -> dict[str, bool]:
        if not ids:
            return {}
        doing = {"delete": "Deleting…", "renew": "Renewing…"}[verb]
        done = {"delete": "Deleted", "renew": "Renewed"}[verb]
        self._update(pending={**self.pending, **dict.fromkeys(ids, doing)})
        self._update(status=f"{doing[:-1]} {_count(ids)}…")
        try:
            call = self.source.destroy if verb == "delete" else self.source.renew
            results = await call(ids)
        finally:
            self._update(pending={k: v for k, v in self.pending.items() if k not in ids})
        ok = [i for i in ids if results.get(i)]
        failed = [i for i in ids if not results.get(i)]
        self._error_from_poll = False
        if failed:
            # One message per event: the alert says it; the status line does not repeat it.
            self._update(error=f"Could not {verb} {self._names(failed)}.", status="")
        else:
            self._update(error="")
            self._say(f"{done} {_count(ok)}.")
        # Show the consequence (Terminating, a new expiry) now rather than at the next tick.
        refreshed = self.feed.refresh_now()
        if verb == "renew" and ok:
            await self._show_renewed(ok, refreshed)
        return results

    async def _show_renewed(self, ids: list[str], refreshed: concurrent.futures.Future) -> None:
        """Publish the renewed sessions' new expiry (the view shows it as a date, highlighted)."""
        try:
            await asyncio.wrap_future(refreshed)
        except Exception:  # the poll's failure is shown by _on_feed
            return
        with self._rows_lock:
            new = {
                i: self._rows[i]["expiry"]
                for i in ids
                if i in self._rows and self._rows[i]["expiry"]
            }
        if new:
            self._update(renewed={**self.renewed, **new})

    def _names(self, ids: list[str]) -> str:
        """``job-1, job-2`` for messages: names where known (ids are for machines)."""
        with self._rows_lock:
            return ", ".join((self._rows.get(i) or {}).get("name") or i for i in ids)

    def _say(self, text: str) -> None:
        """Show ``text`` in the status line, and clear it STATUS_SECONDS later unless replaced."""
        self._status_token += 1
        self._update(status=text)
        # A weak reference: a closed table is not kept alive by its pending clear.
        self._runner.spawn(
            _clear_status_later(weakref.ref(self), self._status_token, text),
            name="SessionTable:status",
        )

    def _show_detail(self, session_id: str, kind: str) -> Any:
        if kind not in ("logs", "events"):
            raise ValueError(f"unknown detail view {kind!r}")
        View = LogViewer if kind == "logs" else EventsView
        previous = self.detail
        child = View([session_id], session=self.source.session)
        with self.hold_sync():
            self.detail = child
            self.detail_id = session_id
            self.detail_kind = kind
        if previous is not None:
            previous.close()
        return child

    # -- representations ----------------------------------------------------------------------

    def _shown_rows(self, *, hide_finished: bool | None = None) -> list[dict[str, Any]]:
        """The rows the filters let through, in the table's sort order (for the snapshot)."""
        hide = self.hide_finished if hide_finished is None else hide_finished
        with self._rows_lock:
            rows = list(self._rows.values())
        needle = self.search.strip().lower()
        out = []
        for row in rows:
            if self.kind_filter and row["kind"] != self.kind_filter:
                continue
            if self.status_filter and row["status"] != self.status_filter:
                continue
            if hide and row["kind"] == "headless" and row["finished"] and not row.get("watched"):
                continue
            if needle and needle not in row["name"].lower() and needle not in row["id"].lower():
                continue
            out.append(row)
        key = self.sort_by if self.sort_by in SORT_COLUMNS else "start"
        present = [r for r in out if _sort_value(r, key) is not None]
        missing = [r for r in out if _sort_value(r, key) is None]
        present.sort(key=lambda r: (natural_key(r["name"]), r["id"]))
        present.sort(key=lambda r: _sort_value(r, key), reverse=self.sort_desc)
        return present + missing

    def _wait_first(self) -> None:
        if self._first.is_set() or self._runner.in_runner_thread():
            return
        self._first.wait(SNAPSHOT_WAIT_SECONDS)

    def _summary(self) -> str:
        with self._rows_lock:
            rows = list(self._rows.values())
        if not rows and not self.last_updated:
            return "loading"
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        text = f"{_count(rows, 'session')}" + (f" ({states})" if states else "")
        if self.last_updated:
            text += f", updated {_html.clock_time(self.last_updated)}"
        if self.error:
            text += f"; error: {self.error}"
        return text

    def _repr_mimebundle_(self, **kwargs: Any):
        self._wait_first()
        return super()._repr_mimebundle_(**kwargs)

    def _empty_text(self, total: int) -> str:
        """What an empty table says: loading, none at all, or how many are hidden and why."""
        if not total:
            if self.last_updated:
                return "No sessions."
            return "Not loaded." if self.error else "Loading sessions…"  # the error says why
        with self._rows_lock:
            rows = list(self._rows.values())
        others = {r["id"] for r in self._shown_rows(hide_finished=False)}
        finished = sum(1 for r in rows if r["id"] in others)  # shown but for "Hide finished"
        return _hidden_text(finished, len(rows) - len(others))

    def _static_html(self) -> str:
        now = time.time()
        body_rows = []
        for row in self._shown_rows():
            left = ""
            if row["expiry"] is not None and not row["finished"]:
                seconds = row["expiry"] - now
                left = "expired" if seconds <= 0 else _html.duration(seconds)
                if 0 < seconds < 3600:
                    left = _html.Raw(
                        f'<span style="color:{_html.WARN};font-weight:600">⚠ {_html.esc(left)}</span>'
                    )
            body_rows.append(
                [
                    row["name"],
                    _html.mono(row["id"]),
                    row["kind"],
                    _html.state_html(row["status"], row["status_text"]),
                    _html.titled(row["image_short"], row["image"]),
                    f"{_fmt(row['cpu_used'])} / {_fmt(row['cpu_req'])}",
                    f"{format_gib(row['ram_used'])} / {format_gib(row['ram_req'])}",
                    _html.titled(
                        _html.relative_time(row["start"], now), _html.absolute_time(row["start"])
                    ),
                    left,
                ]
            )
        with self._rows_lock:
            total = len(self._rows)
        table = _html.table_html(
            f"CANFAR sessions: {len(body_rows)} shown of {total}",
            [
                "Name",
                "ID",
                "Kind",
                "Status",
                "Image",
                "CPU used / req.",
                "RAM used / req.",
                "Started",
                "Time left",
            ],
            body_rows,
            empty=self._empty_text(total),
            numeric=(5, 6),
        )
        note = f"Updated {_html.clock_time(self.last_updated)}" if self.last_updated else ""
        note = (
            note + " · " if note else ""
        ) + "static snapshot: run the notebook for the live table"
        return _html.snapshot("Sessions", table, note=note, error=self.error)


def _hidden_text(finished: int, filtered: int) -> str:
    why = []
    if finished:
        why.append(
            f"{finished} finished job{' is' if finished == 1 else 's are'} hidden by “Hide finished”"
        )
    if filtered:
        why.append(
            f"{filtered} session{' does' if filtered == 1 else 's do'} not match the kind, status or search filter"
        )
    return f"No sessions shown: {'; '.join(why) or 'none match the filters'}."


async def _clear_status_later(ref: weakref.ref[SessionTable], token: int, text: str) -> None:
    await asyncio.sleep(STATUS_SECONDS)
    table = ref()
    if (
        table is not None
        and table.comm is not None
        and table._status_token == token
        and table.status == text
    ):
        table._update(status="")


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return text + unit


def _count(items: Any, noun: str = "session") -> str:
    n = len(items)
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _id_list(ids: Any) -> list[str]:
    if isinstance(ids, str):
        return [ids]
    return [str(i) for i in ids if i]
