"""What every canfar widget shares: status traits, background work, visible errors, fallback.

Rules this base class enforces (widgets-state-of-the-art.md §2.5):

- Traits split by owner. Front-end-owned inputs are written by the browser or the main
  thread; back-end-owned outputs (``error``, ``status``, ``busy``, ``last_updated`` and each
  widget's data) are written only from the runner thread through :meth:`_update`, which
  sends only values that changed, in one message.
- Handlers of front-end messages do no I/O: they :meth:`_spawn` a coroutine on the runner
  and return at once, so no callback blocks the kernel.
- An exception in background work becomes the ``error`` trait, shown by the front end with
  ``role="alert"``; it is never only in a log console. Secrets are scrubbed from it.
- ``_repr_mimebundle_`` adds ``text/plain`` and a static HTML snapshot, so a notebook
  rendered without a widget manager shows a table, not nothing.
- Polling goes through :mod:`canfar_widgets.widgets.feed`: :meth:`_track` subscribes to a
  poller whose visibility follows this widget's views (front ends send
  ``{kind: "visibility", visible, view}``), and :meth:`close` ends every subscription.

Example (a subclass):
    >>> class Clock(CanfarWidget):
    ...     _entry = "clock"
    ...     def __init__(self, session=None, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self._attach(session)
    ...         self._track(self.backend.feed, self._on_rows)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import anywidget
import traitlets

from canfar_widgets.runner import get_runner
from canfar_widgets.widgets._frontend import load_css, load_esm

if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.widgets._backend import Backend
    from canfar_widgets.widgets.feed import Poller, Subscription

__all__ = ["CanfarWidget", "TrafficMeter", "describe_error", "measure_traffic"]

log = logging.getLogger("canfar_widgets.widgets")


class CanfarWidget(anywidget.AnyWidget):
    """Base class: set ``_entry`` to the widget's module name in ``js/`` (without ``.js``)."""

    _entry: ClassVar[str] = ""

    error = traitlets.Unicode("").tag(sync=True)
    """The last error, in words; empty when all is well. Shown with role=alert."""
    status = traitlets.Unicode("").tag(sync=True)
    """A short status line for the aria-live region ("Updated 12:00:03", "Launching...")."""
    busy = traitlets.Bool(False).tag(sync=True)
    last_updated = traitlets.Float(0.0).tag(sync=True)
    """Epoch seconds of the last successful update; 0 when never."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entry = cls.__dict__.get("_entry")
        if entry:
            cls._esm = load_esm(entry)
            cls._css = load_css()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runner = get_runner()
        self._scrub: Callable[[str], str] = lambda text: text
        self.backend: Backend | None = None
        self._subscriptions: list[Subscription] = []
        self._visible_views: set[str] = set()
        self._vis_lock = threading.Lock()
        self.on_msg(self._dispatch_message)

    # -- session and polling ------------------------------------------------------------------

    def _attach(self, session: Any = None) -> Backend:
        """Bind this widget to ``session`` (None -> ``Session()``); errors get scrubbed by it.

        Sets ``self.backend`` (shared by every widget on the same session object).
        """
        from canfar_widgets.widgets._backend import Backend

        backend = Backend.of(session)
        self.backend = backend
        self._scrub = backend.scrub
        return backend

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

    def _visibility_changed(self, visible: bool) -> None:
        """Hook for subclasses (say, to pause a child); called on the kernel thread."""

    def close(self) -> None:
        """Stop this widget's polling and close it (and its front-end views)."""
        for sub in list(getattr(self, "_subscriptions", ())):
            sub.close()
        if hasattr(self, "_subscriptions"):
            self._subscriptions.clear()
        # ipywidgets does not close a DOMWidget's Layout with it (ipywidgets#2308): without
        # this every closed widget leaves a Layout and its comm registered.
        layout = getattr(self, "layout", None)
        super().close()
        if layout is not None:
            layout.close()

    # -- runner side -----------------------------------------------------------------------

    def _update(self, **values: Any) -> None:
        """Set back-end-owned traits, sending only those that changed, in one message."""
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

        return self._runner.spawn(guarded(), on_error=failed, name=f"{type(self).__name__}:{action}")

    def _show_error(self, action: str, exc: BaseException) -> None:
        message = self._scrub(f"{action} failed: {describe_error(exc)}")
        log.warning("%s: %s", type(self).__name__, message)
        self._update(error=message, status=message)

    def _mark_updated(self, status: str | None = None) -> None:
        now = time.time()
        text = status if status is not None else "Updated " + time.strftime("%H:%M:%S", time.localtime(now))
        self._update(last_updated=now, status=text, error="")

    # -- front-end messages ------------------------------------------------------------------

    def _dispatch_message(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        """Route ``{"kind": "x", ...}`` to ``self._on_x(content)``; errors become visible.

        A message that carries binary buffers (only a launch with registry credentials
        does) is handed on as ``self._on_x(content, buffers)``.
        """
        if not isinstance(content, dict):
            return
        kind = str(content.get("kind", ""))
        handler = getattr(self, "_on_" + kind.replace("-", "_"), None)
        if handler is None:
            log.debug("%s: ignoring message kind %r", type(self).__name__, kind)
            return
        try:
            if buffers:
                handler(content, list(buffers))
            else:
                handler(content)
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


class TrafficMeter:
    """Counts what a widget sends to the front end (trait updates and custom messages).

    ``bytes`` is the size of each message's JSON content plus its binary buffers: what the
    comm puts on the wire, minus the envelope. For benchmarks and tests.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.bytes = 0

    @property
    def count(self) -> int:
        return len(self.messages)

    def custom(self) -> list[Any]:
        """Contents of the custom messages (``widget.send``) seen."""
        return [m["content"] for m in self.messages if m.get("method") == "custom"]

    def updates(self) -> list[dict[str, Any]]:
        """The ``state`` dicts of the trait updates seen."""
        return [m.get("state", {}) for m in self.messages if m.get("method") in ("update", "echo_update")]

    def _record(self, data: Any, buffers: Any) -> None:
        size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
        size += sum(len(memoryview(b).cast("B")) for b in buffers or ())
        self.messages.append(data if isinstance(data, dict) else {"data": data})
        self.bytes += size


@contextmanager
def measure_traffic(widget: Any) -> Iterator[TrafficMeter]:
    """Count the bytes ``widget`` sends inside the ``with`` block.

    Example:
        >>> with measure_traffic(table) as meter:
        ...     table.refresh().result()
        >>> meter.bytes, meter.count
        (0, 0)
    """
    meter = TrafficMeter()
    comm = widget.comm
    original = comm.publish_msg

    def publish(msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any):
        if msg_type == "comm_msg":
            meter._record(data, buffers)
        return original(msg_type, data=data, metadata=metadata, buffers=buffers, **keys)

    comm.publish_msg = publish
    try:
        yield meter
    finally:
        comm.publish_msg = original


def describe_error(exc: BaseException) -> str:
    """A person-readable sentence for an exception, without tracebacks or secrets' context."""
    import httpx

    from canfar_widgets.errors import APIError

    if isinstance(exc, APIError):
        return f"{exc.message or exc.response.reason_phrase} (HTTP {exc.status_code})"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from the platform"
    if isinstance(exc, httpx.TimeoutException):
        return "the platform did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach the platform ({type(exc).__name__})"
    # The official client speaks httpx2, whose errors are not httpx's but look alike.
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status} from the platform"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
