"""PlatformLoad: how busy the platform is (CPU and RAM requested vs capacity), with history.

Reads ``GET session?view=stats`` through the shared :class:`~canfar_widgets.widgets.feed.Poller`
at a slow interval (30 s by default; 60 s once a few samples were the same) while a view
is visible, and keeps the last samples so the front end can draw sparklines. Only the new
sample travels to the front end (a ``{kind: "sample"}`` message); a view that opens asks
for the whole history once. When the platform answers 503 (its metrics backend is down)
the next attempt waits for ``Retry-After`` and the view says "Platform statistics
unavailable, retrying in Ns" instead of showing stale numbers as current.

The words come from :mod:`canfar_widgets.widgets.capacity` (RAM in GiB, as the form asks
for it; requests above capacity said to be over-committed), so they agree with the form.

Example:
    >>> from canfar_widgets import PlatformLoad
    >>> load = PlatformLoad()
    >>> load.refresh().result()
    >>> load.cores_used, load.cores_total
    (12.5, 64.0)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from typing import Any, ClassVar

import traitlets

from canfar_widgets import launches
from canfar_widgets.errors import ServiceUnavailable, describe_error, is_auth_error
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages
from canfar_widgets.widgets.capacity import PlatformNumbers, format_cores, format_gib, gib_from_gb
from canfar_widgets.widgets.feed import Poller

__all__ = ["PlatformLoad"]

UNAVAILABLE = "Platform statistics unavailable"
NOT_LOADED = PlatformNumbers()


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class PlatformLoad(CanfarWidget):
    """CPU and RAM requested across the platform against its capacity, as bars plus a short history.

    Args:
        session: the session client (``None``: ``Session()`` from env/config).
        interval: seconds between samples while a view is visible (default 30).
        history_size: samples kept for the sparklines (default 60: half an hour at 30 s).

    Traits (kernel-owned): ``cores_used``/``cores_total`` (cores requested / capacity),
    ``ram_used_gb``/``ram_total_gb`` (decimal GB, as reported) and their ``..._gib`` twins,
    ``cores_max``/``ram_max_gb``/``ram_max_gib`` (the largest session the platform
    allows), ``cpu_text``/``ram_text``/``ceiling_text`` (what the view says),
    ``over_committed``, ``unavailable`` (a message while stats cannot be read),
    ``login_refused`` (the platform refused the login) and ``retry_at`` (epoch seconds
    of the next attempt then). ``history`` ``[[epoch, cores_used, ram_used_gb], ...]``
    (None values for failed samples) is kept here; views get new samples as messages.

    Example:
        >>> PlatformLoad(session, interval=60)
    """

    _entry = "platform_load"

    cores_used = traitlets.Float(None, allow_none=True).tag(sync=True)
    cores_total = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_used_gb = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_total_gb = traitlets.Float(None, allow_none=True).tag(sync=True)
    cores_max = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_max_gb = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_used_gib = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_total_gib = traitlets.Float(None, allow_none=True).tag(sync=True)
    ram_max_gib = traitlets.Float(None, allow_none=True).tag(sync=True)
    cpu_text = traitlets.Unicode("CPU: loading…").tag(sync=True)
    ram_text = traitlets.Unicode("RAM: loading…").tag(sync=True)
    ceiling_text = traitlets.Unicode("").tag(sync=True)
    over_committed = traitlets.Bool(False).tag(sync=True)
    login_refused = traitlets.Bool(False).tag(sync=True)
    history: traitlets.List[list[Any]] = traitlets.List()  # not synced: samples travel one by one
    history_snapshot: traitlets.List[list[Any]] = traitlets.List().tag(sync=True)
    """The history as a view last asked for it (``{kind: "history"}``, when it opens)."""
    history_count = traitlets.Int(0).tag(sync=True)
    """How many samples were taken, as of ``history_snapshot``; samples carry their number."""
    history_size = traitlets.Int(60).tag(sync=True)
    interval = traitlets.Float(30.0).tag(sync=True)
    unavailable = traitlets.Unicode("").tag(sync=True)
    retry_at = traitlets.Float(0.0).tag(sync=True)

    def __init__(
        self, session: Any = None, *, interval: float = 30.0, history_size: int = 60, **kwargs: Any
    ) -> None:
        super().__init__(interval=interval, history_size=history_size, **kwargs)
        self._attach(session)
        self._not_before = 0.0  # epoch seconds: Retry-After from the last 503
        self._initial: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._samples = 0  # numbered, so a view that missed one asks for the history again
        # Twice the interval once a few samples were the same: an idle dashboard's load
        # costs one request a minute.
        self._poller: Poller[Any] = Poller(
            self._poll, fast=interval, slow=interval, idle=2 * interval, name="platform-load"
        )
        # Polls once now, then every `interval` while a view is visible; closed with the widget.
        self._sub = self._track(self._poller, self._on_poll)
        # A launch anywhere in the process changes the load: leave the idle interval.
        self._stop_launches = launches.on_launch(self._launched)

    def _launched(self, ids: list[str]) -> None:
        if self._poller.subscriptions:
            self._poller.nudge()

    def close(self) -> None:
        """Stop sampling and close."""
        stop = getattr(self, "_stop_launches", None)
        if stop is not None:
            stop()
        super().close()

    # -- public ------------------------------------------------------------------------------------

    def refresh(self) -> concurrent.futures.Future[Any]:
        """Sample now (still no sooner than a server's Retry-After); returns a future."""
        return self._poller.refresh_now()

    @property
    def poller(self) -> Poller[Any]:
        """This widget's stats poller (a dashboard nudges it when the window gets focus)."""
        return self._poller

    # -- polling ------------------------------------------------------------------------------------

    async def _poll(self) -> Any:
        wait = self._not_before - time.time()
        if wait > 0:  # the platform asked us to come back later
            await asyncio.sleep(wait)
        return await self.source.stats()

    def _on_poll(self, stats: Any, error: BaseException | None) -> None:
        """Poller callback (runner thread)."""
        now = time.time()
        if error is not None:
            self._failed(error, now)
        elif stats is not None:
            self._not_before = 0.0
            numbers = PlatformNumbers.from_stats(stats)
            values = {
                "cores_used": _number(getattr(stats, "cores_requested", None)),
                "cores_total": _number(getattr(stats, "cores_available", None)),
                "ram_used_gb": _number(getattr(stats, "ram_requested_gb", None)),
                "ram_total_gb": _number(getattr(stats, "ram_available_gb", None)),
                "cores_max": _number(getattr(stats, "cores_max", None)),
                "ram_max_gb": _number(getattr(stats, "ram_max_gb", None)),
                "ram_used_gib": _round(numbers.ram_requested_gib),
                "ram_total_gib": _round(numbers.ram_capacity_gib),
                "ram_max_gib": _round(numbers.session_ram_gib),
                "cpu_text": numbers.cpu_text(),
                "ram_text": numbers.ram_text(),
                "ceiling_text": numbers.session_ceiling_text(),
                "over_committed": numbers.over_committed(),
            }
            sample = [round(now, 3), values["cores_used"], values["ram_used_gb"]]
            self._update(**values, unavailable="", retry_at=0.0, login_refused=False)
            self._add_sample(sample)
            self._mark_updated()
        if not self._initial.done():
            if error is not None:
                self._initial.set_exception(error)
            else:
                self._initial.set_result(stats)

    def _failed(self, error: BaseException, now: float) -> None:
        not_loaded = self.last_updated == 0
        texts = (
            {"cpu_text": NOT_LOADED.cpu_text(), "ram_text": NOT_LOADED.ram_text()}
            if not_loaded
            else {}
        )
        if is_auth_error(error):
            # Polling has stopped (no retry storm with a bad token); say why once, no countdown.
            message = self._scrub(
                self._poller.describe_failure(error, "Reading platform statistics")
            )
            self._update(
                unavailable=message, retry_at=0.0, error="", status="", login_refused=True, **texts
            )
            return
        retry_after = error.retry_after if isinstance(error, ServiceUnavailable) else None
        delay = max(retry_after or 0.0, self._poller.interval())
        self._not_before = now + (retry_after or 0.0)
        text = f"{UNAVAILABLE}, retrying in {math.ceil(delay)}s"
        # A 503 is the platform saying "not now"; anything else is also worth an alert.
        error_text = (
            ""
            if isinstance(error, ServiceUnavailable)
            else self._scrub(f"Reading platform statistics failed: {describe_error(error)}")
        )
        self._update(
            unavailable=UNAVAILABLE,
            retry_at=now + delay,
            status=text,
            error=error_text,
            login_refused=False,
            **texts,
        )
        self._add_sample(
            [round(now, 3), None, None]
        )  # the sparkline shows a break, not a stale value

    def _add_sample(self, sample: list[Any]) -> None:
        """Keep ``sample`` and send only it (runner thread)."""
        size = max(1, self.history_size)
        self._samples += 1
        self.history = [*self.history, sample][-size:]
        self.send({"kind": "sample", "n": self._samples, "sample": sample})

    # -- front-end messages -----------------------------------------------------------------------------

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    def _on_history(self, content: dict[str, Any]) -> None:
        """A view opened (or missed a sample): send the whole history once."""
        history, count = list(self.history), self._samples
        if self.history_snapshot == history and self.history_count == count:
            self.send_state(["history_snapshot", "history_count"])
            return
        with self.hold_sync():
            self.history_snapshot = history
            self.history_count = count

    # What the view sends (plus "visibility").
    _messages: ClassVar[Messages] = {"refresh": _on_refresh, "history": _on_history}

    # -- representations --------------------------------------------------------------------------------

    def _summary(self) -> str:
        if self.unavailable and self.cores_total is None:
            return self.unavailable
        ram_used, ram_total = gib_from_gb(self.ram_used_gb), gib_from_gb(self.ram_total_gb)
        return f"CPU {_fmt(self.cores_used)} / {_fmt(self.cores_total)} cores, RAM {_gib(ram_used)} / {format_gib(ram_total)}"

    def _static_html(self) -> str:
        def bar(label: str, used: float | None, total: float | None, text: str) -> str:
            if used is None or not total:
                return f"<div>{_html.esc(text)}</div>"
            return (
                f"<div>{_html.esc(text)} <meter min='0' max='{total:g}' value='{used:g}' "
                f"aria-label='{_html.esc(label)}'>{_html.esc(text)}</meter></div>"
            )

        ram_used, ram_total = gib_from_gb(self.ram_used_gb), gib_from_gb(self.ram_total_gb)
        body = bar("CPU", self.cores_used, self.cores_total,
                   f"CPU {_fmt(self.cores_used)} / {_fmt(self.cores_total)} cores") + bar(
            "RAM", ram_used, ram_total, f"RAM {_gib(ram_used)} / {format_gib(ram_total)}"
        )  # fmt: skip
        if self.ceiling_text:
            body += f"<div>{_html.esc(self.ceiling_text)}</div>"
        note = self.unavailable or (
            f"Updated {_html.clock_time(self.last_updated)}" if self.last_updated else "Not loaded"
        )
        return _html.snapshot("Platform load", body, note=note)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _gib(value: float | None) -> str:
    """A GiB number without its unit (the total after it carries it)."""
    return format_gib(value).removesuffix(" GiB")


def _fmt(value: float | None) -> str:
    return format_cores(value)
