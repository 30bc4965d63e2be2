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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

import anywidget
import traitlets

from canfar_widgets.runner import get_runner
from canfar_widgets.widgets._frontend import load_css, load_esm

__all__ = ["CanfarWidget", "describe_error"]

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
        self.on_msg(self._dispatch_message)

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
        """Route ``{"kind": "x", ...}`` to ``self._on_x(content)``; errors become visible."""
        if not isinstance(content, dict):
            return
        kind = str(content.get("kind", ""))
        handler = getattr(self, "_on_" + kind.replace("-", "_"), None)
        if handler is None:
            log.debug("%s: ignoring message kind %r", type(self).__name__, kind)
            return
        try:
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
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
