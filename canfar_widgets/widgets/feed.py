"""The one polling mechanism every widget uses: ``Poller`` and its ``Subscription``s.

Why one mechanism: polling is where notebook widgets go wrong (a periodic callback kept a
JupyterHub server alive for days; a 401 turned into a retry storm; an error blanked the
table). ``Poller`` gets it right once:

- the loop runs on the runner (``get_runner().spawn``), never on the kernel loop, so
  updates keep arriving while another cell blocks;
- fast interval while ``is_busy(last value)`` (something is changing) and for a while
  after :meth:`Poller.hurry` (a launch); fast for a few polls while ``is_lively(value)``
  (a headless job runs); slow otherwise, and ``idle`` once a few polls in a row brought
  nothing new (an idle dashboard costs ~1 request a minute per poller); any action,
  a view becoming visible or :meth:`Poller.nudge` (the window got focus) makes it fast
  again at once;
- an error keeps the last value, is handed to subscribers, and backs off (x2 up to the
  slow interval); a 401/403 stops polling until :meth:`Poller.resume` or
  :meth:`Poller.refresh_now` (no retry storm with a dead token);
- a new subscription or ``refresh_now()`` polls at once;
- nothing is polled with zero subscriptions, or while none of them is visible (views
  report visibility; a widget with no view yet counts as not visible). Note that while a
  cell blocks the kernel, incoming comm messages queue, so "no message arrived" never
  means "hidden": only an explicit ``visible: false`` does.

Example:
    >>> poller = Poller(fetch_stats, fast=2, slow=15, name="stats")
    >>> sub = poller.subscribe(lambda value, error: print(value, error))
    >>> sub.set_visible(True)      # starts periodic polling
    >>> poller.refresh_now().result(timeout=10)
    >>> sub.close()                # the last subscription gone: polling stops
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from canfar_widgets.errors import describe_error, is_auth_error
from canfar_widgets.runner import get_runner

__all__ = ["Poller", "Subscription"]

T = TypeVar("T")
log = logging.getLogger("canfar_widgets.widgets")

Callback = Callable[["T | None", "BaseException | None"], None]


class Subscription:
    """One consumer of a :class:`Poller` (usually one widget). Not visible until told."""

    def __init__(
        self,
        poller: Poller[Any],
        callback: Callable[[Any, BaseException | None], None],
        is_busy: Callable[[Any], bool] | None = None,
    ):
        self._poller = poller
        self.callback = callback
        # What this consumer waits for (say, a batch's sessions to finish): while it is
        # true of the last value, the shared poller uses its fast interval for everyone.
        self.is_busy = is_busy
        self.visible = False
        self.closed = False

    def set_visible(self, visible: bool) -> None:
        """Report whether any view of the consumer is on screen; polling pauses when none is.

        Coming into view counts as activity: an idle poller polls again at once (if its
        value is older than its fast interval) and leaves its idle interval.
        """
        visible = bool(visible)
        if self.closed or visible == self.visible:
            return
        self.visible = visible
        if visible:
            self._poller.nudge()
        else:
            self._poller._changed()

    def close(self) -> None:
        """Stop receiving values; the poller stops once no subscription is left."""
        if self.closed:
            return
        self.closed = True
        self.visible = False
        self._poller._unsubscribe(self)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("visible" if self.visible else "hidden")
        return f"<Subscription to {self._poller.name or 'poller'}: {state}>"


class Poller(Generic[T]):
    """Calls ``poll()`` on the runner loop and hands each result to subscribers.

    Args:
        poll: an async function returning the value (say, the session list).
        fast: seconds between polls while ``is_busy(value)``.
        slow: seconds between polls otherwise; also the cap of the error backoff.
        is_busy: whether the last value means something is about to change.
        idle: seconds between polls once ``idle_after`` polls in a row returned the same
            value (default: ``slow``, i.e. no idling).
        idle_after: unchanged polls before ``idle`` applies (default 3).
        is_lively: whether the last value means something may change (a job running):
            fast for ``lively_polls`` unchanged polls, then slow, never idle.
        name: for logs and task names.

    Attributes (read from any thread): ``value`` (last good value or None), ``error``
    (last error or None), ``updated`` (epoch seconds of the last good poll, 0 if never),
    ``polls`` (how many polls ran; tests read it), ``auth_stopped``, ``unchanged``
    (polls in a row that brought the same value).

    Callbacks run on the runner thread: ``callback(value, error)`` where ``value`` is the
    last good value (kept on error) and ``error`` the exception of this poll or None.
    """

    def __init__(
        self,
        poll: Callable[[], Awaitable[T]],
        *,
        fast: float = 2.0,
        slow: float = 15.0,
        is_busy: Callable[[T], bool] = lambda v: False,
        idle: float | None = None,
        idle_after: int = 3,
        is_lively: Callable[[T], bool] | None = None,
        lively_polls: int = 15,
        name: str = "",
    ) -> None:
        self._poll = poll
        self.fast = float(fast)
        self.slow = float(max(slow, fast))
        self.idle = float(max(idle if idle is not None else self.slow, self.slow))
        self.idle_after = int(idle_after)
        self.lively_polls = int(lively_polls)
        self._is_busy = is_busy
        self._is_lively = is_lively
        self.unchanged = 0
        self._hot_until = 0.0  # time.monotonic() until which a hurry() keeps polling fast
        self._memo: dict[str, tuple[Any, bool]] = {}  # check -> (value it ran on, result)
        self.name = name or type(self).__name__
        self.value: T | None = None
        self.error: BaseException | None = None
        self.updated = 0.0
        self.polls = 0
        self.auth_stopped = False
        self._failures = 0
        self._subs: list[Subscription] = []
        self._waiters: list[concurrent.futures.Future[T]] = []
        self._want_now = False
        self._next_due = 0.0  # runner-loop time of the next periodic poll
        self._lock = threading.Lock()
        self._task: concurrent.futures.Future[Any] | None = None
        self._wake: asyncio.Event | None = None
        self._runner = get_runner()

    # -- public --------------------------------------------------------------------------------

    def subscribe(
        self,
        callback: Callable[[T | None, BaseException | None], None],
        is_busy: Callable[[T], bool] | None = None,
    ) -> Subscription:
        """Add a consumer; polls at once (and hands it the current value, if any, first).

        The subscription starts hidden: call ``set_visible(True)`` when a view shows it.
        ``is_busy(value)``, if given, keeps polling fast while it is true (a batch waiting
        for its Running jobs), on top of the poller's own ``is_busy``.
        """
        sub = Subscription(self, callback, is_busy)
        with self._lock:
            self._subs.append(sub)
            self._want_now = True
            have = self.value is not None or self.error is not None
        if have:
            # A second table on a shared feed shows the rows it already has right away.
            with contextlib.suppress(RuntimeError):  # runner shut down: nothing to show
                self._runner.call_soon(self._deliver_one, sub, self.error)
        self._changed()
        return sub

    def refresh_now(self) -> concurrent.futures.Future[T]:
        """Poll as soon as possible (also after an auth stop); the future gets its result.

        A poll already running when this is called does not count: the result reflects
        the platform after this call (say, after a delete).
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            self._waiters.append(future)
            self._want_now = True
            self.auth_stopped = False
            self.unchanged = 0  # an action (refresh, delete, launch): the value may move
        self._changed()
        return future

    def hurry(self, seconds: float) -> None:
        """Poll now and then fast for ``seconds`` (say, just after a launch).

        Why: a 10 s headless job must be seen while it runs, though the list looked
        stable a moment before it was created.
        """
        with self._lock:
            self._hot_until = max(self._hot_until, time.monotonic() + float(seconds))
            self.unchanged = 0
            self._want_now = True
        self._changed()

    def nudge(self) -> None:
        """Someone is looking again (a view came into view, the window got focus).

        Leaves the idle interval at once, and polls now if the last value is older
        than the fast interval; otherwise the next poll keeps its time.
        """
        with self._lock:
            self.unchanged = 0
            if self.auth_stopped:
                pass  # a refused login waits for the person (refresh_now/resume)
            elif time.time() - self.updated >= self.fast:
                self._want_now = True
            elif self._runner.started:
                # Not idle any more: the next poll comes within the fast interval.
                with contextlib.suppress(RuntimeError):  # runner shut down meanwhile
                    self._next_due = min(self._next_due, self._runner.loop.time() + self.fast)
        self._changed()

    def resume(self) -> None:
        """Restart polling after a 401/403 stop (say, once the token is fixed)."""
        with self._lock:
            self.auth_stopped = False
            self._failures = 0
            self._want_now = True
        self._changed()

    @property
    def visible(self) -> bool:
        """Whether any subscription is visible now."""
        return any(s.visible for s in list(self._subs))

    @property
    def running(self) -> bool:
        """Whether the polling task is alive (it ends when no subscription is left)."""
        task = self._task
        return task is not None and not task.done()

    @property
    def subscriptions(self) -> int:
        return len(self._subs)

    def interval(self) -> float:
        """Seconds until the next periodic poll would be due after the last one.

        After an error: exponential backoff up to ``slow``, and never sooner than the
        server's ``Retry-After`` (a 503 saying "come back in 30 s" is honoured).
        """
        if self.error is not None and self._failures:
            backoff = min(self.fast * 2**self._failures, self.slow)
            retry_after = getattr(self.error, "retry_after", None)
            return max(backoff, retry_after) if isinstance(retry_after, (int, float)) else backoff
        if time.monotonic() < self._hot_until or self._busy(self.value):
            return self.fast
        if self._is_lively is not None and self._check("lively", self._is_lively, self.value):
            return self.fast if self.unchanged < self.lively_polls else self.slow
        return self.slow if self.unchanged < self.idle_after else self.idle

    def seconds_to_next_poll(self) -> float | None:
        """How long until the next periodic poll (None while stopped or nobody watches)."""
        if self.auth_stopped or not self.visible or not self._runner.started:
            return None
        return max(0.0, self._next_due - self._runner.loop.time())

    def describe_failure(self, error: BaseException, what: str) -> str:
        """The sentence a widget shows for a failed poll: what failed and what happens next.

        Example: ``"Updating sessions failed: bad gateway (HTTP 502). Retrying in 4 s."``
        """
        message = f"{what} failed: {describe_error(error)}"
        if is_auth_error(error):
            return message + " Automatic refresh stopped; press Refresh to try again."
        wait = self.seconds_to_next_poll()
        return message + (
            f" Retrying in {math.ceil(wait)} s." if wait is not None else " Press Refresh to retry."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {len(self._subs)} subscriptions, {self.polls} polls>"

    # -- internals ----------------------------------------------------------------------------

    def _busy(self, value: T | None) -> bool:
        if value is None:
            return False
        if self._check("busy", self._is_busy, value):
            return True
        for check in [s.is_busy for s in list(self._subs) if s.is_busy and not s.closed]:
            try:
                if check(value):
                    return True
            except Exception:
                log.debug("%s: is_busy failed", self.name, exc_info=True)
        return False

    def _check(self, key: str, check: Callable[[Any], bool], value: Any) -> bool:
        """``check(value)``, remembered while the value is the same object.

        Why: a quiet poll of 5,000 sessions hands back the very same list, and asking
        each record whether it is busy costs more than the rest of that poll.
        """
        if value is None:
            return False
        memo = self._memo.get(key)
        if memo is not None and memo[0] is value:
            return memo[1]
        try:
            result = bool(check(value))
        except Exception:
            log.debug("%s: %s check failed", self.name, key, exc_info=True)
            result = False
        self._memo[key] = (value, result)
        return result

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            # Nobody is left to hand a result to: stop now, even mid-poll or mid-wait (a
            # closed widget must not keep retrying against a platform that may be gone).
            idle = not self._subs and not self._waiters
            task = self._task if idle else None
        if task is not None and not task.done():
            task.cancel()
            return
        self._changed()

    def _changed(self) -> None:
        """Something changed (subscribers, visibility, a request): start or wake the loop."""
        try:
            with self._lock:
                need = bool(self._subs or self._waiters)
                start = need and (self._task is None or self._task.done())
                if start:
                    if self._runner.loop.is_closed():  # raises too once shut down
                        raise RuntimeError("runner loop closed")
                    coro = self._run()
                    try:
                        self._task = self._runner.spawn(
                            coro, on_error=self._loop_failed, name=f"poll:{self.name}"
                        )
                    except BaseException:
                        coro.close()
                        raise
            if not start and self._runner.started:
                self._runner.call_soon(self._set_wake)
        except RuntimeError:
            # The runner is shut down (interpreter exit, widgets closed by __del__): nothing
            # is polling any more, so there is nothing to start or wake.
            log.debug("%s: runner gone", self.name)

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _loop_failed(self, exc: BaseException) -> None:
        log.error("%s: polling loop failed", self.name, exc_info=exc)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        try:
            while True:
                wake.clear()  # before reading state, so no wake-up is lost
                with self._lock:
                    if not self._subs and not self._waiters:
                        # Cleared under the lock that _changed() takes, so a subscriber
                        # arriving now starts a fresh loop instead of waking this one.
                        self._task = None
                        return
                    visible = any(s.visible for s in self._subs)
                    periodic = visible and not self.auth_stopped
                    due = self._want_now or (periodic and loop.time() >= self._next_due)
                if due:
                    await self._poll_once(loop)
                    continue
                timeout = max(0.0, self._next_due - loop.time()) if periodic else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
        except asyncio.CancelledError:  # runner shutdown
            with self._lock:
                waiters, self._waiters = self._waiters, []
            for future in waiters:
                future.cancel()
            raise
        finally:
            if self._wake is wake:
                self._wake = None

    async def _poll_once(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
            self._want_now = False
        value: T | None = None
        error: BaseException | None = None
        try:
            value = await self._poll()
        except asyncio.CancelledError:
            for future in waiters:
                future.cancel()
            raise
        except Exception as exc:  # every failure is handed on; none kills the loop
            error = exc
        self.polls += 1
        if error is None:
            self.unchanged = self.unchanged + 1 if _same(value, self.value) else 0
            self.value, self.error, self._failures = value, None, 0
            self.updated = time.time()
        else:
            self.error = error
            self._failures += 1
            if is_auth_error(error):
                with self._lock:
                    self.auth_stopped = True
                log.info("%s: stopped polling after %s", self.name, type(error).__name__)
        self._next_due = loop.time() + self.interval()
        for sub in list(self._subs):
            self._deliver_one(sub, error)
        for future in waiters:
            if future.done():
                continue
            if error is None:
                future.set_result(value)  # type: ignore[arg-type]
            else:
                future.set_exception(error)

    def _deliver_one(self, sub: Subscription, error: BaseException | None = None) -> None:
        if sub.closed:
            return
        try:
            sub.callback(self.value, error if error is not None else None)
        except Exception:  # one broken consumer must not starve the others
            log.exception("%s: subscriber callback failed", self.name)


def _same(new: Any, old: Any) -> bool:
    """Whether a poll brought nothing new: the same object, or equal item by item.

    Lists are compared by their items' identity first (a source that reuses unchanged
    records makes a quiet poll of thousands a cheap walk), then by equality.
    """
    if old is None:
        return False
    if new is old:
        return True
    if isinstance(new, list) and isinstance(old, list):
        return len(new) == len(old) and all(a is b or a == b for a, b in zip(new, old, strict=True))
    try:
        return bool(new == old)
    except Exception:
        return False
