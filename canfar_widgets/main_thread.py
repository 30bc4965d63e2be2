"""Hand callbacks from background threads to a Jupyter kernel's main thread, in order.

Why: widgets compute their state on the runner thread, but trait observers a user
registers (``widget.observe(fn, "status")``) are user code, and ipywidgets users expect
them on the kernel's main thread. Run on the runner instead, a slow observer would stall
every widget, and one that calls a sync ``Session`` method would fail (the runner cannot
wait on itself). So :func:`call_on_main` queues the call and wakes the kernel's event loop
(``loop.call_soon_threadsafe``); the loop runs the queue when it is free. While a cell
blocks in a sync call (``Session.wait()``), the loop is not free: the kernel pump
(:mod:`canfar_widgets.kernel_pump`), which that wait calls between slices, runs the queue
too, so observers keep firing during the wait.

Outside a kernel (scripts, plain Python, tests) and on the main thread itself, the call runs
at once, where it is made: nothing changes there.

Example:
    >>> seen = []
    >>> call_on_main(seen.append, 1)   # not in a kernel: runs now
    >>> seen
    [1]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = [
    "MainThreadQueue",
    "ThreadInbox",
    "call_on_main",
    "in_kernel",
    "run_pending",
    "running_kernel",
]

log = logging.getLogger(__name__)


def _kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The running ipykernel's main-thread loop, or ``None`` outside a kernel."""

    kernel = running_kernel()
    if kernel is None:
        return None
    loop = getattr(getattr(kernel, "io_loop", None), "asyncio_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed() else None


class ThreadInbox:
    """A FIFO of calls that only its owner thread runs, woken through the owner's loop.

    Why one class: trait observers (owner: the kernel's main thread) and batch hooks
    (owner: the thread that registered them) both need the same thing: queue a call from
    any thread, wake the owner's event loop once with ``call_soon_threadsafe``, and run
    the calls there in order, never re-entrantly. ``owner()`` names the thread (None: none
    yet, so nothing runs); ``find_loop()`` its loop, or None when there is none to wake
    (then the calls wait for the owner's next :meth:`run_pending`).

    Example:
        >>> inbox = ThreadInbox(threading.main_thread, lambda: None)
        >>> inbox.put(print, "later")   # from any thread; no loop here, so it waits
        >>> inbox.run_pending()         # on the main thread
        later
        1
    """

    def __init__(
        self,
        owner: Callable[[], threading.Thread | None],
        find_loop: Callable[[], asyncio.AbstractEventLoop | None],
    ) -> None:
        self._owner = owner
        self._find_loop = find_loop
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._woken = False  # a run_pending() is already scheduled on the loop
        self._running = False  # run_pending() is on the stack (owner thread only)

    def put(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the owner thread and wake its loop (any thread)."""
        self._put(fn, args, self._find_loop())

    def _put(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        with self._lock:
            self._calls.append((fn, args))
            wake = loop is not None and not self._woken
            self._woken = self._woken or wake
        if wake and loop is not None:
            try:
                loop.call_soon_threadsafe(self.run_pending)
            except RuntimeError:  # the loop closed: only the owner's run_pending() runs them
                with self._lock:
                    self._woken = False

    def run_pending(self) -> int:
        """Run every queued call (owner thread only, else nothing); returns how many ran.

        Not re-entrant: a queued call that itself waits (a sync ``Session`` call in an
        observer) does not run the calls queued behind it; they run when it returns.
        """
        if threading.current_thread() is not self._owner() or self._running:
            return 0
        self._running = True
        ran = 0
        try:
            while True:
                with self._lock:
                    if not self._calls:
                        self._woken = False
                        return ran
                    fn, args = self._calls.popleft()
                self._invoke(fn, args)
                ran += 1
        finally:
            self._running = False

    def find_loop(self) -> asyncio.AbstractEventLoop | None:
        """The owner's loop calls are handed to, or ``None``."""
        return self._find_loop()

    @property
    def pending(self) -> int:
        """Calls queued and not yet run."""
        return len(self._calls)

    @staticmethod
    def _invoke(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:  # a failing call must not stop the ones queued after it
            log.exception("callback on the owner thread failed: %r", fn)


class MainThreadQueue(ThreadInbox):
    """The :class:`ThreadInbox` of the main thread, woken through ``find_loop()``'s loop.

    ``find_loop`` returns the main thread's event loop, or ``None`` when there is none to
    hand work to (then calls run where they are made). Tests give their own.
    """

    def __init__(
        self, find_loop: Callable[[], asyncio.AbstractEventLoop | None] = _kernel_loop
    ) -> None:
        super().__init__(threading.main_thread, find_loop)

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the main thread: now if this is it (or there is no kernel),
        else as soon as the main thread's loop or a blocked wait gets to it, after every
        call queued before."""
        if threading.current_thread() is threading.main_thread():
            self.run_pending()  # what was queued earlier happened earlier: keep the order
            fn(*args)  # as without this module: an observer's exception reaches the setter
            return
        loop = self._find_loop()
        if loop is None:
            fn(*args)
            return
        self._put(fn, args, loop)


_queue = MainThreadQueue()


def call_on_main(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the kernel's main thread (see :class:`MainThreadQueue.call`)."""
    _queue.call(fn, *args)


def in_kernel() -> bool:
    """Whether calls from other threads are handed to a kernel's main thread (else run in place)."""
    return _queue.find_loop() is not None


def run_pending() -> int:
    """Run the calls queued for the main thread; the kernel pump calls this while a cell waits."""
    return _queue.run_pending()


def running_kernel() -> Any | None:
    """The running IPython kernel of this process, or None (a script, plain IPython)."""
    # Never import ipykernel here: in a script it is absent or unused, and importing it
    # would cost ~0.3 s for nothing.
    module = sys.modules.get("ipykernel.kernelbase")
    if module is None:
        return None
    kernel_class = getattr(module, "Kernel", None)
    try:
        if kernel_class is None or not kernel_class.initialized():
            return None
        return kernel_class.instance()
    except Exception:
        return None
