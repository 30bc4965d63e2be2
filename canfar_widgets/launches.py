"""An in-process notice that sessions were just launched: the client says it, widgets listen.

Why: a widget's session list polls slowly while all looks stable, so a 10 s job launched
from a notebook cell (``Session.create`` / ``launch_replicas``) would finish unseen. The
client announces every launch here; the widgets' shared feeds listen and poll fast for a
while. Nothing here knows about widgets: the client imports this tiny module, never the
widgets, and a process without widgets pays one empty loop per launch.

A notice names the platform (its API URL) when the launcher knows it, and a listener may
ask to hear only one platform's launches: a job started on the local platform must not
make a table of the real one poll (nor a feed whose platform is gone retry against it).

Example:
    >>> from canfar_widgets import launches
    >>> here = "https://ws-uv.canfar.net/skaha/v1/"
    >>> stop = launches.on_launch(lambda ids: print("launched", ids), platform=here)
    >>> launches.announce(["k3x9ab2q"], platform="https://ws-uv.canfar.net/skaha/v1")
    launched ['k3x9ab2q']
    >>> launches.announce(["m7v2cd4e"], platform="http://127.0.0.1:8765/skaha/v1")  # not heard
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
# Each entry: (how to get the listener, the platform it hears or None for all). Bound
# methods are held weakly (a feed that is gone stops listening by itself); plain functions
# strongly, until their stop() is called.
_listeners: list[tuple[Callable[[], Listener | None], str | None]] = []


def _platform_key(url: object) -> str | None:
    """How platforms are compared: the URL without its trailing slashes."""
    return None if url is None else str(url).rstrip("/")


def on_launch(listener: Listener, *, platform: str | None = None) -> Callable[[], None]:
    """Call ``listener(ids)`` after every launch in this process; returns ``stop()``.

    With ``platform`` (an API URL) it hears only launches on that platform, and those
    whose launcher did not say where (the official client does not tell). ``listener``
    runs on the thread that launched (often the runner's): keep it short and never
    block in it.
    """
    ref: Callable[[], Any]
    if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
        ref = weakref.WeakMethod(listener)
    else:
        ref = lambda: listener  # noqa: E731 - a strong reference with the weakref's shape
    entry = (ref, _platform_key(platform))
    with _lock:
        _listeners.append(entry)

    def stop() -> None:
        with _lock:
            if entry in _listeners:
                _listeners.remove(entry)

    return stop


def announce(ids: Sequence[str], *, platform: str | None = None) -> None:
    """Tell every listener that ``ids`` were just created (even an empty list: a launch
    that failed may still have created something, so a look is worth it).

    ``platform`` is the API URL the launch went to, if known; listeners of another
    platform are not told.
    """
    where = _platform_key(platform)
    with _lock:
        entries = list(_listeners)
    dead = []
    for entry in entries:
        ref, heard = entry
        listener = ref()
        if listener is None:
            dead.append(entry)
            continue
        if where is not None and heard is not None and heard != where:
            continue
        try:
            listener([str(i) for i in ids])
        except Exception:  # a broken listener must never break a launch
            log.debug("launch listener failed", exc_info=True)
    if dead:
        with _lock:
            for entry in dead:
                if entry in _listeners:
                    _listeners.remove(entry)
