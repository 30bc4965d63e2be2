"""Keep interactive sessions alive until a chosen time, renewing them when little time is left.

CANFAR ends an interactive session some days after it started or was last renewed, and
has no "keep it until Friday" setting; the Science Portal's answer is to press Renew in
time. :class:`KeepAlive` presses it for you: a background task on the runner looks at the
sessions' expiry and renews each one when less than ``margin`` (an hour) is left, as long
as its expiry is before ``until``. It stops by itself at ``until`` (or when every session
is gone, finished or not renewable), and at once on :meth:`KeepAlive.stop`.

Headless jobs are not renewed (they run until their command ends) and nor are finished or
Terminating sessions: those ids are dropped and listed in ``skipped``.

Example:
    >>> from datetime import datetime, timedelta, timezone
    >>> keeper = session.keep_alive(["k3x9ab2q"], until=datetime.now(timezone.utc) + timedelta(days=7))
    >>> keeper.renewals            # {id: renews so far}
    {'k3x9ab2q': 0}
    >>> keeper.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any

__all__ = ["CHECK_SECONDS", "MARGIN_SECONDS", "KeepAlive"]

log = logging.getLogger(__name__)

# Renew when less than this is left (the portal warns at one hour too).
MARGIN_SECONDS = 3600.0
# Look at the sessions at least this often (their expiry may move: a renew from elsewhere).
CHECK_SECONDS = 300.0

InfoCall = Callable[[list[str]], Awaitable[list[Any]]]
"""``info(ids)`` -> records with ``id``, ``type``, ``state``, ``finished`` and ``expiry``."""
RenewCall = Callable[[list[str]], Awaitable[dict[str, bool]]]


def _epoch(until: datetime | float | int) -> float:
    if isinstance(until, datetime):
        if until.tzinfo is None:  # a naive datetime is the person's local time
            until = until.astimezone()
        return until.timestamp()
    if isinstance(until, (int, float)) and not isinstance(until, bool):
        return float(until)
    raise TypeError(f"until must be a datetime or epoch seconds, not {type(until).__name__}")


class KeepAlive:
    """A running keep-alive: which sessions, until when, how many renews; stop() ends it.

    Made by ``Session.keep_alive`` / ``AsyncSession.keep_alive`` (or a SessionTable's
    "Keep alive until..."); start it with :meth:`start`.

    Example:
        >>> keeper = KeepAlive(["k3x9ab2q"], until=time.time() + 86400, info=info, renew=renew).start()
        >>> keeper.active
        True
    """

    def __init__(
        self,
        ids: str | Iterable[str],
        until: datetime | float,
        *,
        info: InfoCall,
        renew: RenewCall,
        margin: float = MARGIN_SECONDS,
        check_every: float = CHECK_SECONDS,
    ) -> None:
        self.ids: list[str] = [ids] if isinstance(ids, str) else [str(i) for i in ids if i]
        if not self.ids:
            raise ValueError("ids: give at least one session id to keep alive")
        self.until: float = _epoch(until)
        if self.until <= time.time():
            raise ValueError(
                "until: the time to keep the sessions alive until must be in the future"
            )
        if margin <= 0 or check_every <= 0:
            raise ValueError("margin and check_every: must be positive numbers of seconds")
        self.margin = float(margin)
        self.check_every = float(check_every)
        self.renewals: dict[str, int] = dict.fromkeys(self.ids, 0)
        """Renews made so far, by id."""
        self.skipped: dict[str, str] = {}
        """Ids no longer kept alive, and why (``"finished"``, ``"headless"``, ``"not found"``...)."""
        self.last_error: str = ""
        """The last failure to read or renew (the task keeps trying at the next check)."""
        self._info = info
        self._renew = renew
        self._future: concurrent.futures.Future[None] | None = None
        self._stopped = False

    # -- control --------------------------------------------------------------------------

    def start(self) -> KeepAlive:
        """Start the background task on the runner (once); returns ``self``."""
        if self._future is None:
            from canfar_widgets.runner import get_runner

            self._future = get_runner().spawn(self._run(), name="KeepAlive")
        return self

    def stop(self) -> None:
        """Stop renewing now (a renew already sent still lands)."""
        self._stopped = True
        if self._future is not None:
            self._future.cancel()

    @property
    def active(self) -> bool:
        """True while the task runs (started, not stopped, ``until`` not reached)."""
        return self._future is not None and not self._future.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task has ended (True) or ``timeout`` seconds passed (False)."""
        if self._future is None:
            return True
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        except concurrent.futures.CancelledError:
            pass
        return True

    def __repr__(self) -> str:
        until = datetime.fromtimestamp(self.until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        state = "active" if self.active else "stopped"
        return f"<KeepAlive {len(self.ids)} session(s) until {until}, {sum(self.renewals.values())} renew(s), {state}>"

    # -- the task ------------------------------------------------------------------------

    async def _run(self) -> None:
        watching = list(self.ids)
        while watching and not self._stopped:
            now = time.time()
            if now >= self.until:
                return
            try:
                records = {r.id: r for r in await self._info(watching)}
            except Exception as exc:  # a blip: try again at the next check
                self._failed("read", exc)
                records = None
            soonest = self.until
            if records is not None:
                due = []
                for sid in list(watching):
                    why = self._not_renewable(records.get(sid))
                    if why:
                        self.skipped[sid] = why
                        watching.remove(sid)
                        continue
                    expiry = records[sid].expiry
                    if expiry is None:
                        continue
                    expires = expiry.timestamp()
                    if expires >= self.until:
                        continue  # lives past the chosen time already
                    if expires - now < self.margin:
                        due.append(sid)
                    else:
                        soonest = min(soonest, expires - self.margin)
                if due:
                    try:
                        results = await self._renew(due)
                    except Exception as exc:
                        self._failed("renew", exc)
                    else:
                        for sid in due:
                            if results.get(sid):
                                self.renewals[sid] += 1
                        self.last_error = ""
            if not watching:
                return
            pause = min(self.check_every, max(soonest - time.time(), 0.0), self.until - time.time())
            # After a renew the new expiry is read at the next check, not in a busy loop.
            await asyncio.sleep(max(pause, min(self.check_every, 1.0)))

    @staticmethod
    def _not_renewable(record: Any) -> str:
        if record is None:
            return "not found"
        if getattr(record, "finished", False):
            return "finished"
        if getattr(record, "state", "") == "Terminating":
            return "being deleted"
        if (getattr(record, "type", None) or "") == "headless":
            return "headless"
        return ""

    def _failed(self, what: str, exc: BaseException) -> None:
        message = f"Keep-alive could not {what} {', '.join(self.ids)}: {exc}"
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message
