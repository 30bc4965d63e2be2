"""What every canfar widget shares: status traits, background work, visible errors, fallback.

Rules this base class enforces (docs/architecture.md, "Widget data flow"):

- Traits split by owner. Front-end-owned inputs are written by the browser or the main
  thread; kernel-owned outputs (``error``, ``status``, ``busy``, ``last_updated`` and each
  widget's data) are written only from the runner thread through :meth:`_update`, which
  sends only values that changed, in one message.
- User code never runs on the runner: observers of a trait the runner changed run on the
  kernel's main thread (:meth:`notify_change`), while the new value reaches the front end
  at once, so a slow observer delays neither the runner nor any widget's view.
- Handlers of front-end messages do no I/O: they :meth:`_spawn` a coroutine on the runner
  and return at once, so no callback blocks the kernel.
- An exception in background work becomes the ``error`` trait, shown by the front end with
  ``role="alert"``; it is never only in a log console. Secrets are scrubbed from it.
- ``_repr_mimebundle_`` adds ``text/plain`` and a static HTML snapshot, so a notebook
  rendered without a widget manager shows a table, not nothing. In a kernel the snapshot is
  its own output that follows the widget's state (throttled, :meth:`_ipython_display_`), so
  a saved, exported or reopened notebook shows the last state, not the first.
- Each widget lists the messages its front end sends in one table, ``_messages``
  (``{kind: handler}``), merged along the class hierarchy: that table is the widget's
  protocol, and a kind not in it is ignored (nothing is found by name).
- Polling goes through :mod:`canfar_widgets.widgets.feed`: :meth:`_track` subscribes to a
  poller whose visibility follows this widget's views (front ends send
  ``{kind: "visibility", visible, view}``), and :meth:`close` ends every subscription.

Example (a subclass):
    >>> class Clock(CanfarWidget):
    ...     _entry = "clock"
    ...     def __init__(self, session=None, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self._attach(session)
    ...         self._track(self.source.feed, self._rows_arrived)
    ...     def _reset(self, content):
    ...         ...
    ...     _messages: ClassVar[Messages] = {"reset": _reset}
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar

import anywidget
import traitlets

from canfar_widgets.errors import describe_error
from canfar_widgets.main_thread import call_on_main, in_kernel, run_pending
from canfar_widgets.runner import get_runner
from canfar_widgets.widgets._frontend import live_css, live_esm
from canfar_widgets.widgets._source import SessionSource
from canfar_widgets.widgets.feed import Poller, Subscription

__all__ = ["CanfarWidget", "Messages"]

log = logging.getLogger("canfar_widgets.widgets")

Messages = Mapping[str, Callable[..., None]]
"""A widget's message table: ``{kind: handler(self, content[, buffers])}``."""


def _notify_observers(widget: CanfarWidget, change: Any) -> None:
    # traitlets' own notify_change (observers only): the state went out already.
    traitlets.HasTraits.notify_change(widget, change)


class CanfarWidget(anywidget.AnyWidget):
    """Base class: set ``_entry`` to the widget's module name in ``js/`` (without ``.js``)."""

    _entry: ClassVar[str] = ""

    source: SessionSource
    """Where this widget's data comes from (set by :meth:`_attach`; shared per session object)."""

    error = traitlets.Unicode("").tag(sync=True)
    """The last error, in words; empty when all is well. Shown with role=alert."""
    status = traitlets.Unicode("").tag(sync=True)
    """A short status line for the aria-live region ("Updated 12:00:03", "Launching...")."""
    busy = traitlets.Bool(False).tag(sync=True)
    last_updated = traitlets.Float(0.0).tag(sync=True)
    """Epoch seconds of the last successful update; 0 when never."""

    # _messages, ``{kind: handler}`` of this class's front-end messages, is set after the
    # handlers in each class body (this class's is below _on_visibility).
    _message_table: ClassVar[dict[str, Callable[..., None]]] = {}
    """This class's ``_messages`` merged with its bases' (built once per class)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Callable[..., None]] = {}
        for klass in reversed(cls.__mro__):
            table.update(klass.__dict__.get("_messages", {}))
        cls._message_table = table
        entry = cls.__dict__.get("_entry")
        if entry:
            cls._esm = live_esm(entry)
            cls._css = live_css()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runner = get_runner()
        self._scrub: Callable[[str], str] = lambda text: text
        self._subscriptions: list[Subscription] = []
        self._visible_views: set[str] = set()
        self._vis_lock = threading.Lock()
        self.on_msg(self._dispatch_message)
        self._snapshot_lock = threading.Lock()
        self._snapshot_displays: list[str] = []  # display ids of this widget's snapshot outputs
        self._snapshot_due = False  # a refresh is scheduled
        self._snapshot_at = 0.0  # monotonic time of the last refresh
        # Widgets whose snapshot shows this one's state too (a Dashboard's frame): a change
        # here refreshes theirs as well.
        self._snapshot_parents: list[CanfarWidget] = []

    # -- session and polling ------------------------------------------------------------------

    def _attach(self, session: Any = None) -> SessionSource:
        """Bind this widget to ``session`` (None -> ``Session()``); errors get scrubbed by it.

        Sets :attr:`source` (shared by every widget on the same session object).
        """
        source = SessionSource.of(session)
        self.source = source
        self._scrub = source.scrub
        return source

    def _track(
        self,
        poller: Poller[Any],
        callback: Callable[[Any, BaseException | None], None],
        is_busy: Callable[[Any], bool] | None = None,
    ) -> Subscription:
        """Subscribe to ``poller`` for this widget's lifetime.

        The subscription is visible while any view of this widget reports itself visible,
        and is closed by :meth:`close`. ``callback(value, error)`` runs on the runner thread.
        ``is_busy(value)`` keeps the shared poller fast while this widget waits for change.
        """
        sub = poller.subscribe(callback, is_busy)
        sub.set_visible(bool(self._visible_views))
        self._subscriptions.append(sub)
        return sub

    def _untrack(self, sub: Subscription) -> None:
        sub.close()
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    @property
    def visible(self) -> bool:
        """Whether any view of this widget is on screen (as the front end last reported)."""
        return bool(self._visible_views)

    def _on_visibility(self, content: dict[str, Any]) -> None:
        """``{kind: "visibility", visible: bool, view: str}`` from a view of this widget."""
        view = str(content.get("view") or "_")
        with self._vis_lock:
            if content.get("visible"):
                self._visible_views.add(view)
            else:
                self._visible_views.discard(view)
            visible = bool(self._visible_views)
        for sub in list(self._subscriptions):
            sub.set_visible(visible)
        self._visibility_changed(visible)

    _messages: ClassVar[Messages] = {"visibility": _on_visibility}

    def _visibility_changed(self, visible: bool) -> None:
        """Hook for subclasses (say, to pause a child); called on the kernel thread."""

    def close(self) -> None:
        """Stop this widget's polling and close it (and its front-end views)."""
        for sub in list(getattr(self, "_subscriptions", ())):
            sub.close()
        if hasattr(self, "_subscriptions"):
            self._subscriptions.clear()
        if hasattr(self, "_snapshot_lock"):
            with self._snapshot_lock:  # its snapshot keeps the last state it published
                self._snapshot_displays.clear()
        # ipywidgets does not close a DOMWidget's Layout with it (ipywidgets#2308): without
        # this every closed widget leaves a Layout and its comm registered.
        layout = getattr(self, "layout", None)
        super().close()
        if layout is not None:
            layout.close()

    # -- runner side -----------------------------------------------------------------------

    def notify_change(self, change: Any) -> None:
        """Send a changed trait to the front end now; run its observers on the main thread.

        traitlets runs observers in the thread that set the trait, which for kernel-owned
        traits is the runner: a user's observer would block every widget's background work
        (and a sync ``Session`` call in it could not work). So a change made off the main
        thread in a kernel goes to the front end at once (what ipywidgets' own
        ``notify_change`` does first) and its observers are queued for the main thread
        (:mod:`canfar_widgets.main_thread`), in order. Elsewhere (no kernel, main thread),
        this is ipywidgets' ``notify_change`` unchanged.
        """
        if getattr(self, "_snapshot_displays", None):
            self._snapshot_stale()
        for parent in getattr(self, "_snapshot_parents", ()):
            parent._snapshot_stale()
        if threading.current_thread() is threading.main_thread():
            run_pending()  # changes the runner made earlier are observed first
            super().notify_change(change)
            return
        if not in_kernel():
            super().notify_change(change)
            return
        name = change["name"]
        comm = self.comm
        live = comm is not None and getattr(comm, "kernel", True) is not None
        if live and name in self.keys and self._should_send_property(name, getattr(self, name)):
            self.send_state(key=name)
        call_on_main(_notify_observers, self, change)

    def _update(self, **values: Any) -> None:
        """Set kernel-owned traits, sending only those that changed, in one message."""
        changed = {k: v for k, v in values.items() if getattr(self, k) != v}
        if not changed:
            return
        with self.hold_sync():
            for name, value in changed.items():
                setattr(self, name, value)

    def _spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        action: str,
        busy: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        """Run ``coro`` on the runner; its failure shows as ``"<action> failed: ..."``.

        Returns the ``concurrent.futures.Future`` (tests wait on it).
        """

        async def guarded() -> Any:
            if busy:
                self._update(busy=True)
            try:
                return await coro
            finally:
                if busy:
                    self._update(busy=False)

        def failed(exc: BaseException) -> None:
            self._show_error(action, exc)
            if on_error is not None:
                on_error(exc)

        return self._runner.spawn(
            guarded(), on_error=failed, name=f"{type(self).__name__}:{action}"
        )

    def _show_error(self, action: str, exc: BaseException) -> None:
        message = self._scrub(f"{action} failed: {describe_error(exc)}")
        # INFO: the widget shows the message; a WARNING record would also be printed in red
        # under the cell by logging's last-resort handler (the same words twice).
        log.info("%s: %s", type(self).__name__, message)
        self._update(error=message, status=message)

    def _mark_updated(self, status: str | None = None) -> None:
        now = time.time()
        text = (
            status
            if status is not None
            else "Updated " + time.strftime("%H:%M:%S", time.localtime(now))
        )
        self._update(last_updated=now, status=text, error="")

    # -- front-end messages ------------------------------------------------------------------

    def _dispatch_message(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        """Route ``{"kind": "x", ...}`` to ``_messages["x"]``; errors become visible.

        A message with an ``ack`` id (js/lib/busy.js) is answered ``{kind: "ack", ack}`` at
        once, before its handler runs. A message that carries binary buffers (only a launch
        with registry credentials does) is handed on as ``handler(self, content, buffers)``. ``-`` and ``_`` in a
        kind are the same (``close-detail`` is ``close_detail``).
        """
        if not isinstance(content, dict):
            return
        ack = content.get("ack")
        if isinstance(ack, str) and ack:
            # "Your click arrived" before any work: the view's "Waiting for the kernel"
            # note (js/lib/busy.js) shows only while this has not come.
            self.send({"kind": "ack", "ack": ack})
        kind = str(content.get("kind", ""))
        handler = self._message_table.get(kind.replace("-", "_"))
        if handler is None:
            log.debug("%s: ignoring message kind %r", type(self).__name__, kind)
            return
        try:
            if buffers:
                handler(self, content, list(buffers))
            else:
                handler(self, content)
        except Exception as exc:  # a handler bug must show in the widget, not vanish
            self._show_error(kind or "action", exc)

    # -- representations ---------------------------------------------------------------------

    def _summary(self) -> str:
        """One line for ``repr()`` and ``text/plain``; subclasses say what they show."""
        return ""

    def _static_html(self) -> str:
        """A self-contained HTML snapshot (no JS) for renderers without a widget manager."""
        return ""

    def __repr__(self) -> str:
        summary = self._summary()
        return f"<{type(self).__name__}{': ' + summary if summary else ''}>"

    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data = dict(data)
        data["text/plain"] = repr(self)
        html = self._static_html()
        if html:
            data["text/html"] = html
        return data, metadata

    # -- the saved snapshot (issue 15, item 19) ------------------------------------------------

    def _ipython_display_(self) -> None:
        """In a kernel: the live view, then the snapshot as its own output that follows the state.

        Why two outputs: JupyterLab and Notebook 7 never fall back from a widget view to its
        ``text/html`` sibling (a missing model shows "Error displaying widget: model not
        found"), and updating an output that holds a widget view rebuilds the view (flicker,
        lost focus). So the view is one output (widget view + ``text/plain``) and the
        snapshot another (``text/html``, with a ``display_id``), replaced through
        ``update_display_data`` at most every :attr:`snapshot_interval` seconds after a
        change. The notebook saves and exports (nbconvert) that last snapshot. A live view
        hides its snapshot (js/lib/snapshot.js); a page without the model shows it, and the
        snapshot's own style hides the "model not found" line just above it.
        Outside a kernel this is the plain mimebundle display.
        """
        self._display_with_snapshot(self._repr_mimebundle_())

    def _display_with_snapshot(self, bundle: Any) -> None:
        """Display ``bundle`` (a view's mimebundle) as the live view + this widget's snapshot.

        The bundle may be another widget's whose view holds this one: a Dashboard (a plain
        ipywidgets box) is displayed through its frame, whose view hides the snapshot and
        whose :meth:`_snapshot_html` is the whole Dashboard's.
        """
        from IPython.display import display

        if bundle is None:
            return
        data, metadata = bundle
        if not in_kernel():
            display(data, metadata=metadata, raw=True)
            return
        html = data.pop("text/html", "")
        if not html:
            display(data, metadata=metadata, raw=True)
            return
        # The state in words goes with the snapshot (it follows the state too); the view's
        # own text would stay as it was when the cell ran, so it says nothing.
        text = data.pop("text/plain", "")
        display({**data, "text/plain": ""}, metadata=metadata, raw=True)
        display_id = f"canfar-{self._snapshot_id}-{len(self._snapshot_displays)}"
        with self._snapshot_lock:
            self._snapshot_displays.append(display_id)
            del self._snapshot_displays[:-8]  # displayed many times: keep the latest few
        display(
            {"text/html": self._snapshot_wrap(html), "text/plain": text},
            raw=True,
            display_id=display_id,
        )

    snapshot_interval: ClassVar[float] = 2.0
    """Seconds between two refreshes of the saved snapshot (changes in between are merged)."""

    _snapshot_id = traitlets.Unicode("").tag(sync=True)
    """Marks this widget's snapshot output, so its live views can hide it."""

    @traitlets.default("_snapshot_id")
    def _new_snapshot_id(self) -> str:
        return uuid.uuid4().hex[:16]

    def _snapshot_html(self) -> str:
        """What a refreshed snapshot shows: this widget's static HTML (a frame: its whole)."""
        return self._static_html()

    def _snapshot_text(self) -> str:
        return repr(self)

    def _snapshot_wrap(self, html: str) -> str:
        return (
            f'<div class="canfar-w-snapshot" data-canfar-snapshot="{self._snapshot_id}">'
            f"{SNAPSHOT_STYLE}{html}</div>"
        )

    def _snapshot_stale(self) -> None:
        """A trait changed: refresh the snapshot soon (once per interval at most)."""
        with self._snapshot_lock:
            if not self._snapshot_displays or self._snapshot_due:
                return
            self._snapshot_due = True
            delay = max(0.0, self._snapshot_at + self.snapshot_interval - time.monotonic())
        try:
            loop = self._runner.loop
            loop.call_soon_threadsafe(loop.call_later, delay, self._refresh_snapshot)
        except RuntimeError:  # the runner is shut down: the last snapshot stays
            with self._snapshot_lock:
                self._snapshot_due = False

    def _refresh_snapshot(self) -> None:
        """Replace every snapshot output of this widget with the current state (runner thread)."""
        with self._snapshot_lock:
            self._snapshot_due = False
            self._snapshot_at = time.monotonic()
            displays = list(self._snapshot_displays)
        if not displays:
            return
        try:
            html, text = self._snapshot_html(), self._snapshot_text()
            if not html:
                return
            data = {"text/html": self._snapshot_wrap(html), "text/plain": text}
            for display_id in displays:
                _update_display(data, display_id)
        except Exception:  # a snapshot bug must not break the widget; the old one stays
            log.warning("%s: snapshot not refreshed", type(self).__name__, exc_info=True)


def _update_display(data: dict[str, str], display_id: str) -> None:
    from IPython.display import update_display

    update_display(data, display_id=display_id, raw=True)


# The saved page has no widget model: hide the widget output right above a snapshot when
# its renderer failed (ipywidgets' renderer adds ``jupyter-widgets`` to itself only then, with
# the text "Error displaying widget: model not found"), so the snapshot is what one reads.
# (``:has()`` cannot nest, hence the class rather than "has no element child".)
SNAPSHOT_STYLE = (
    "<style>.jp-OutputArea-child:has(> .jp-OutputArea-output.jupyter-widgets)"
    ":has(+ .jp-OutputArea-child [data-canfar-snapshot]){display:none}</style>"
)
