"""The event-loop-safe runner: one private asyncio loop in a daemon thread.

Why: a notebook kernel already runs an event loop in the caller's thread, so
``asyncio.run()`` and ``loop.run_until_complete()`` fail there, and patching the loop
(nest_asyncio) breaks uvloop, Python 3.12+ ``loop_factory`` callers and ipykernel 7's
"Run All". Instead every async resource (the httpx client, polling tasks) lives on one
loop that this module owns, and callers marshal work into it:

- ``run(coro)`` from sync code anywhere: a script, IPython, a Jupyter cell, inside a
  user's ``asyncio.run``; it waits in short slices so Ctrl-C or a kernel interrupt
  cancels the work, and refuses to run on the runner's own thread (it would deadlock).
  In a Jupyter kernel's main thread a wait that lasts serves the kernel's pending widget
  messages between slices (:mod:`canfar_widgets.kernel_pump`), so buttons keep working
  while a cell blocks; an interrupted wait that said where it stood
  (:func:`explain_interrupt`) raises :class:`WaitInterrupted`, shown as one line;
- ``await arun(coro)`` from async code on any loop; cancelling the await cancels the work;
- ``spawn(coro)`` for background work (widget polling): keeps a strong reference to the
  task and routes its exception to a callback instead of losing it.

Nothing is patched at import. ``allow_nested_asyncio()`` is an explicit opt-in for
people who paste ``asyncio.run(main())`` from the docs into a cell.

Example:
    >>> from canfar_widgets.runner import get_runner
    >>> async def answer():
    ...     return 42
    >>> get_runner().run(answer())
    42
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from canfar_widgets import kernel_pump

__all__ = ["Runner", "WaitInterrupted", "allow_nested_asyncio", "explain_interrupt", "get_runner"]

T = TypeVar("T")
log = logging.getLogger(__name__)

# How often a blocked run() wakes up so that KeyboardInterrupt is delivered promptly.
_WAIT_SLICE = 0.1
# A run() that has waited this long starts serving a Jupyter kernel's widget messages; most
# calls (one request) end sooner and never touch the kernel.
_PUMP_AFTER = 0.25


class WaitInterrupted(KeyboardInterrupt):
    """A blocking call was interrupted (Ctrl-C, the kernel's stop button); ``str()`` says where it stood.

    A ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` still catches it. Raised
    ``from None`` by :meth:`Runner.run`, and IPython and Jupyter show only its one line
    (through ``_render_traceback_``, IPython's hook for exceptions that format themselves)
    instead of a traceback through the runner's internals.

    Example:
        >>> try:
        ...     session.wait(ids, until="finished")   # the user presses stop
        ... except WaitInterrupted as stop:
        ...     print(stop)
        Interrupted: 0 of 2 finished; the sessions keep running.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class _InterruptNote:
    """What an interrupted run() should say; set by :func:`explain_interrupt` on the runner."""

    __slots__ = ("describe",)

    def __init__(self) -> None:
        self.describe: Callable[[], str] | None = None


_interrupt_note: contextvars.ContextVar[_InterruptNote | None] = contextvars.ContextVar(
    "canfar_widgets_interrupt_note", default=None
)


@contextlib.contextmanager
def explain_interrupt(describe: Callable[[], str]) -> Iterator[None]:
    """While active, an interrupt of the ``run()`` awaiting this code says ``describe()``.

    For coroutines that wait a long time on behalf of a sync caller (``Session.wait``):
    the caller's Ctrl-C then raises :class:`WaitInterrupted` with that one line instead of
    a bare ``KeyboardInterrupt``. ``describe`` is called on the caller's thread at the
    moment of the interrupt, so it should only read state (say, counts). Does nothing when
    the code was not started by :meth:`Runner.run` (``await`` from another loop, ``spawn``).

    Example:
        >>> async def _wait(self, keys):
        ...     done = {}
        ...     with explain_interrupt(lambda: f"Interrupted: {len(done)} of {len(keys)} finished."):
        ...         ...  # poll until every key is in done
    """
    note = _interrupt_note.get()
    if note is None:
        yield
        return
    previous, note.describe = note.describe, describe
    try:
        yield
    finally:
        note.describe = previous


class Runner:
    """One asyncio loop in a daemon thread, started lazily on first use.

    Most code wants the process-wide instance from :func:`get_runner`; tests may make
    their own and ``shutdown()`` it.
    """

    def __init__(self, name: str = "canfar-widgets-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # The futures spawn() handed out and not yet resolved (cancelled in a forked child).
        self._results: set[concurrent.futures.Future[Any]] = set()
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._closed = False
        _runners.add(self)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The runner's loop, starting its thread on first access."""
        loop = self._loop
        # After shutdown the closed loop is still referenced; say so rather than letting
        # asyncio report a bare "Event loop is closed".
        if loop is not None and not self._closed:
            return loop
        with self._lock:
            if self._closed:
                raise RuntimeError("this runner has been shut down")
            if self._loop is None:
                ready = threading.Event()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._serve, args=(loop, ready), name=self.name, daemon=True
                )
                thread.start()
                ready.wait()
                self._thread = thread
                self._loop = loop
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def in_runner_thread(self) -> bool:
        """True when called from the runner's own thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def _restart_after_fork(self) -> None:
        """In a forked child: forget the parent's loop and thread; the next use starts afresh.

        Only the thread that called fork() survives it, so the loop thread is gone while
        everything still points at it: a lock it held stays held, and futures of its tasks
        never resolve. The runner object stays the same (widgets and pollers keep a
        reference to it); its state is what is renewed.
        """
        self._lock = threading.Lock()
        loop, self._loop, self._thread = self._loop, None, None
        if loop is not None:
            # Never closed or collected here: its selector and self-pipe are the parent's too.
            _parent_loops.append(loop)
        self._tasks = set()
        results, self._results = self._results, set()
        # Those tasks died with the loop thread: say so, so that their owners (a poller that
        # checks whether its loop still runs, a launch waiting to finish) start over.
        for result in results:
            # A future whose lock the dead thread held (it was resolving it at the instant of
            # the fork) would block this hook, and so the child, forever: leave that one be.
            condition = getattr(result, "_condition", None)
            if condition is not None and not condition.acquire(blocking=False):
                continue
            if condition is not None:
                condition.release()
            with contextlib.suppress(Exception):
                result.cancel()

    def on_shutdown(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Register an async cleanup (say, closing an httpx client) run at shutdown."""
        self._cleanups.append(cleanup)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel background tasks, run cleanups, stop the loop and join the thread.

        Safe to call twice; called at interpreter exit for the shared runner.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return

        async def _drain() -> None:
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            for cleanup in reversed(self._cleanups):
                try:
                    await asyncio.wait_for(cleanup(), timeout)
                except Exception:  # a failing cleanup must not block the others
                    log.debug("runner cleanup failed", exc_info=True)
            self._cleanups.clear()
            # Cancel whatever else is still pending (e.g. submitted work) so the loop closes quietly.
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            for task in rest:
                task.cancel()
            if rest:
                await asyncio.wait(rest, timeout=timeout)

        if thread is not threading.current_thread():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_drain(), loop).result(timeout * 2)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout)

    # -- entry points --------------------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the runner loop; returns a thread-safe future.

        Cancelling the future cancels the task (or, if it has not started, closes ``coro``).
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            self._schedule(coro, future)
        except BaseException:
            # Ctrl-C may land after the work was queued but before it returned: cancel it
            # rather than let it run on unseen (a create would then go unreported).
            future.cancel()
            raise
        return future

    def _schedule(self, coro: Coroutine[Any, Any, T], future: concurrent.futures.Future[T]) -> None:
        """Start ``coro`` on the loop and mirror it into ``future`` (which is made first, so a
        caller interrupted while this runs still holds something to cancel)."""
        try:
            loop = self.loop
        except BaseException:
            coro.close()  # shut down: it will never run
            raise

        def start() -> None:
            if future.cancelled():
                coro.close()  # never started: no "coroutine was never awaited" warning
                return
            task = loop.create_task(coro)

            def settle(done: asyncio.Task[T]) -> None:
                if done.cancelled():
                    future.cancel()
                    return
                with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled
                    if (error := done.exception()) is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(done.result())

            def cancel_task(mirror: concurrent.futures.Future[T]) -> None:
                if mirror.cancelled() and not task.done():
                    with contextlib.suppress(RuntimeError):  # the loop is closed
                        loop.call_soon_threadsafe(task.cancel)

            task.add_done_callback(settle)
            future.add_done_callback(cancel_task)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:
            coro.close()  # the loop is closed: it will never run
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runner loop and block until it finishes.

        Interruptible: Ctrl-C (or a Jupyter kernel interrupt) cancels the coroutine and
        re-raises ``KeyboardInterrupt``; a ``timeout`` cancels it and raises ``TimeoutError``.

        Example:
            >>> get_runner().run(asyncio.sleep(0, result="done"))
            'done'
        """
        if self.in_runner_thread():
            coro.close()
            raise RuntimeError(
                "Runner.run() was called on the runner's own thread and would deadlock; "
                "use `await` there instead"
            )
        # The task runs in a copy of this context (call_soon_threadsafe copies it), so the
        # note set here is the one explain_interrupt() finds inside the coroutine.
        note = _InterruptNote()
        context = contextvars.copy_context()
        context.run(_interrupt_note.set, note)
        # Made before the work is queued, so a Ctrl-C landing while it is being queued still
        # has something to cancel (the work may already be running on the loop by then).
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        pump: kernel_pump.KernelPump | None = None
        pump_at: float | None = started + _PUMP_AFTER
        try:
            context.run(self._schedule, coro, future)
            while True:
                remaining = _WAIT_SLICE
                if deadline is not None:
                    remaining = min(remaining, max(0.0, deadline - time.monotonic()))
                # wait() rather than result(timeout): since Python 3.11 a TimeoutError raised
                # *by the coroutine* is the same class as result()'s "not yet", and mistaking
                # one for the other would spin here forever.
                concurrent.futures.wait((future,), timeout=remaining)
                if future.done():
                    return future.result()
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"gave up after {timeout} s")
                if pump_at is not None and now >= pump_at:
                    pump_at = None  # looked up once per call: None outside a kernel's main thread
                    pump = kernel_pump.pump_for_this_thread()
                if pump is not None:
                    pump.serve()  # widget clicks while this cell blocks
        except KeyboardInterrupt:
            # Described before cancelling: the cancellation unwinds the coroutine's
            # explain_interrupt() on the loop thread, which may clear the note at once.
            message = _describe_interrupt(note)
            future.cancel()
            if message is None:
                raise
            raise WaitInterrupted(message) from None
        except BaseException:
            future.cancel()
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the runner loop, from any other event loop.

        On the runner's own loop this simply awaits it. Cancelling the caller cancels the work.

        Example:
            >>> async def main():
            ...     return await get_runner().arun(asyncio.sleep(0, result=1))
        """
        if self.in_runner_thread():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        on_error: Callable[[BaseException], None] | None = None,
        name: str | None = None,
    ) -> concurrent.futures.Future[T]:
        """Start background work on the runner loop and return at once.

        The task is kept alive until it ends; an exception goes to ``on_error`` (called on
        the runner thread) or, without one, to the log at ERROR. Never silently lost.
        """
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._results.add(result)
        result.add_done_callback(self._results.discard)

        def _done(task: asyncio.Task[T]) -> None:
            self._tasks.discard(task)
            if task.cancelled():
                result.cancel()
                return
            exc = task.exception()
            # The caller may have cancelled ``result`` while the task was finishing; setting
            # a cancelled future raises InvalidStateError inside the loop's callback.
            if exc is None:
                if not result.done():
                    result.set_result(task.result())
                return
            if not result.done():
                result.set_exception(exc)
            # The exception is handed on, so asyncio need not warn that it was never retrieved.
            try:
                if on_error is not None:
                    on_error(exc)
                else:
                    log.error("background task %s failed", task.get_name(), exc_info=exc)
            except Exception:  # an error handler that fails must not kill the loop
                log.exception("error handler for %s failed", task.get_name())

        def _start() -> None:
            # ``result`` stays PENDING while the task runs (never set_running_or_notify_cancel):
            # concurrent futures cannot be cancelled once RUNNING, and cancelling it must
            # cancel the task.
            if result.cancelled() or self._closed:  # shutdown began after spawn() returned
                coro.close()
                result.cancel()
                return
            task = loop.create_task(coro, name=name)
            self._tasks.add(task)
            task.add_done_callback(_done)

            # Cancelling the returned future cancels the task. The callback runs in whichever
            # thread cancelled the future, and Task.cancel() is not thread-safe.
            def _cancel_task(f: concurrent.futures.Future[T]) -> None:
                # (Not for a loop left behind by fork(): nothing runs it in this process.)
                if f.cancelled() and not task.done() and self._loop is loop:
                    with contextlib.suppress(RuntimeError):  # loop already closed
                        loop.call_soon_threadsafe(task.cancel)

            result.add_done_callback(_cancel_task)

        loop = self.loop
        if self.in_runner_thread():
            _start()
        else:
            loop.call_soon_threadsafe(_start)
        return result

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run a plain callback on the runner thread (thread-safe)."""
        self.loop.call_soon_threadsafe(callback, *args)

    @property
    def task_count(self) -> int:
        """Background tasks alive now (leak tests read this)."""
        return len(self._tasks)


def _describe_interrupt(note: _InterruptNote) -> str | None:
    describe = note.describe
    if describe is None:
        return None
    try:
        return str(describe())
    except Exception:  # a broken description must not hide the interrupt itself
        log.debug("interrupt description failed", exc_info=True)
        return None


_shared: Runner | None = None
_shared_lock = threading.Lock()
# Every runner of this process, so that a fork can restart each one in the child.
_runners: weakref.WeakSet[Runner] = weakref.WeakSet()
# Loops a fork left behind in this (child) process; see Runner._restart_after_fork.
_parent_loops: list[asyncio.AbstractEventLoop] = []


def get_runner() -> Runner:
    """The process-wide runner shared by every Session and widget."""
    global _shared
    runner = _shared
    if runner is not None and not runner._closed:
        return runner
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = Runner()
        return _shared


def _shutdown_shared() -> None:
    if _shared is not None:
        _shared.shutdown()


def _after_fork_in_child() -> None:
    # The loop thread does not survive fork(): every runner starts afresh in the child,
    # in place, so that objects built before the fork (sessions, widgets) keep working.
    global _shared_lock
    _shared_lock = threading.Lock()
    for runner in list(_runners):
        runner._restart_after_fork()


atexit.register(_shutdown_shared)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def allow_nested_asyncio() -> None:
    """Let ``asyncio.run(main())`` work inside a notebook cell (explicit opt-in).

    You rarely need this: ``Session`` works in cells as it is, and ``AsyncSession`` wants
    a plain ``await``. It exists for code pasted from scripts. It patches only the loop
    running in this thread, with the maintained fork nest-asyncio2 (``pip install
    "canfar-widgets[nested]"``), and refuses where nesting is known to break things:
    no running loop (nothing to nest), our own runner thread, uvloop or any loop that is
    not a stock asyncio loop, the archived ``nest_asyncio`` already applied, or a
    nest-asyncio2 older than 1.7.4 (before the ipykernel 7 shared-context fix).

    Raises:
        RuntimeError: with the reason, when it refuses.
        ImportError: when nest-asyncio2 is not installed.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "no event loop is running in this thread, so there is nothing to nest: "
            "asyncio.run() already works here"
        ) from None
    runner = _shared
    if runner is not None and runner.in_runner_thread():
        raise RuntimeError("refusing to patch the canfar-widgets runner loop")
    if not isinstance(loop, asyncio.BaseEventLoop):
        raise RuntimeError(
            f"refusing to patch a {type(loop).__module__}.{type(loop).__name__} loop "
            "(only stock asyncio loops can be nested; uvloop cannot)"
        )
    if getattr(asyncio, "_nest_patched", False) and not getattr(loop, "_nest_patched", False):
        raise RuntimeError(
            "the archived nest_asyncio has already patched asyncio; not mixing the two"
        )
    try:
        import nest_asyncio2
    except ImportError as err:
        raise ImportError(
            'allow_nested_asyncio() needs nest-asyncio2: pip install "canfar-widgets[nested]"'
        ) from err
    from importlib.metadata import version

    found = version("nest-asyncio2")
    if _version_tuple(found) < (1, 7, 4):
        raise RuntimeError(f"nest-asyncio2 {found} is too old; 1.7.4 or newer is needed")
    nest_asyncio2.apply(loop)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)
