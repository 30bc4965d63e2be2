"""An in-process notice that sessions were just launched: the client says it, widgets listen.

Why: a widget's session list polls slowly while all looks stable, so a 10 s job launched
from a notebook cell (``Session.create`` / ``launch_replicas``) would finish unseen. The
client announces every launch here; the widgets' shared feeds listen and poll fast for a
while. Nothing here knows about widgets: the client imports this tiny module, never the
widgets, and a process without widgets pays one empty loop per launch.

Example:
    >>> from canfar_widgets import launches
    >>> stop = launches.on_launch(lambda ids: print("launched", ids))
    >>> launches.announce(["k3x9ab2q"])
    launched ['k3x9ab2q']
    >>> stop()
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["announce", "on_launch"]

log = logging.getLogger("canfar_widgets")

Listener = Callable[[list[str]], None]

_lock = threading.Lock()
# Bound methods are held weakly (a feed that is gone stops listening by itself); plain
# functions strongly, until their stop() is called.
_listeners: list[Callable[[], Listener | None]] = []


def on_launch(listener: Listener) -> Callable[[], None]:
    """Call ``listener(ids)`` after every launch in this process; returns ``stop()``.

    ``listener`` runs on the thread that launched (often the runner's): keep it short
    and never block in it.
    """
    ref: Callable[[], Any]
    if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
        ref = weakref.WeakMethod(listener)
    else:
        ref = lambda: listener  # noqa: E731 - a strong reference with the weakref's shape
    with _lock:
        _listeners.append(ref)

    def stop() -> None:
        with _lock:
            if ref in _listeners:
                _listeners.remove(ref)

    return stop


def announce(ids: Sequence[str]) -> None:
    """Tell every listener that ``ids`` were just created (even an empty list: a launch
    that failed may still have created something, so a look is worth it)."""
    with _lock:
        refs = list(_listeners)
    dead = []
    for ref in refs:
        listener = ref()
        if listener is None:
            dead.append(ref)
            continue
        try:
            listener([str(i) for i in ids])
        except Exception:  # a broken listener must never break a launch
            log.debug("launch listener failed", exc_info=True)
    if dead:
        with _lock:
            for ref in dead:
                if ref in _listeners:
                    _listeners.remove(ref)
