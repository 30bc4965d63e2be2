"""Batch hooks: ``on_finished``/``on_failed`` callbacks, run on the thread that owns the batch.

Why not on the thread that notices: a batch is refreshed on the package runner (the thread
every widget's updates go out on). A user's callback there would stall every widget while
it runs, and a sync ``Session`` call inside it would wait on the very loop it blocks. So a
refresh only *queues* the events; the callbacks run on the thread that registered them:

- in a Jupyter kernel (the registering thread runs an asyncio loop: the kernel's), they are
  handed to that loop (a :class:`canfar_widgets.main_thread.ThreadInbox`, as trait observers
  are) and run between cells, on the main thread;
- anywhere (a script, or a kernel cell blocked in ``batch.wait()``), ``wait()`` and
  ``refresh()`` run whatever is queued for their thread before they return or poll again.

Each event is handed out once, whichever of the two gets to it first. This module does not
import the widget stack (``import canfar_widgets.batches`` must stay light).

Example:
    >>> hooks = Hooks()
    >>> hooks.add("failed", lambda replica: print("failed:", replica.name))
    >>> hooks.note(replicas, finished=False, batch=batch)   # on the runner, after a refresh
    >>> hooks.drain()                                       # on the owner thread
    failed: scan-3
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Literal

from canfar_widgets.main_thread import ThreadInbox

__all__ = ["Hooks"]

log = logging.getLogger("canfar_widgets.batches")

Kind = Literal["finished", "failed"]


class _Hook:
    """One registered callback and what it has already been told."""

    def __init__(self, kind: Kind, fn: Callable[[Any], Any]) -> None:
        self.kind = kind
        self.fn = fn
        self.told_failed: set[tuple[int, int]] = set()  # (replica, attempt)
        self.told_finished = False  # reset when the batch runs again (a re-run)


class Hooks:
    """The callbacks of one batch, the events queued for them, and the thread they run on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[_Hook] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox = ThreadInbox(lambda: self._thread, lambda: self._loop)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    @property
    def thread(self) -> threading.Thread | None:
        """The thread the callbacks run on (the first one that registered a callback)."""
        return self._thread

    def add(self, kind: Kind, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"on_{kind}: expected a callable, not {type(fn).__name__}")
        with self._lock:
            if self._thread is None:
                self._thread = threading.current_thread()
                self._loop = _running_loop()
            self._hooks.append(_Hook(kind, fn))

    def note(self, failed: Iterable[Any], finished: bool, batch: Any) -> None:
        """Queue the events a refresh saw (any thread); hand them to the owner's loop.

        ``failed``: the replicas whose current attempt failed (objects with ``replica`` and
        ``attempt``); ``finished``: whether the batch as a whole has finished. A closed
        loop leaves them to ``wait()``/``refresh()`` on the owner thread.
        """
        failed = list(failed)
        with self._lock:
            for hook in self._hooks:
                if hook.kind == "failed":
                    for replica in failed:
                        key = (replica.replica, replica.attempt)
                        if key not in hook.told_failed:
                            hook.told_failed.add(key)
                            self._inbox.put(_tell, hook, replica)
                elif finished and not hook.told_finished:
                    hook.told_finished = True
                    self._inbox.put(_tell, hook, batch)
                elif not finished:
                    hook.told_finished = False

    def queued(self) -> bool:
        """Whether events wait for the owner thread to run them."""
        return self._inbox.pending > 0

    def drain(self) -> None:
        """Run the queued callbacks, if this is the owner thread (else do nothing).

        A callback that raises is reported (logged and printed) and the others still run;
        one that calls ``refresh()``/``wait()`` does not run the queue again inside itself.
        """
        self._inbox.run_pending()


def _tell(hook: _Hook, argument: Any) -> None:
    """Run one callback; one that raises is logged and printed, and the next still runs."""
    try:
        hook.fn(argument)
    except Exception:
        log.exception("batch on_%s callback %r failed", hook.kind, hook.fn)
        traceback.print_exc()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, if any (in a Jupyter kernel cell: the kernel's)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
