"""PlatformLoad: how busy the platform is (CPU and RAM requested vs capacity), with history.

Reads ``GET session?view=stats`` through the shared :class:`~canfar_widgets.widgets.feed.Poller`
at a slow interval (30 s by default) while a view is visible, and keeps the last samples
so the front end can draw sparklines. When the platform answers 503 (its metrics backend is
down) the next attempt waits for ``Retry-After`` and the view says "Platform statistics
unavailable, retrying in Ns" instead of showing stale numbers as current.

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
from typing import Any

import traitlets

from canfar_widgets.errors import ServiceUnavailable
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, describe_error
from canfar_widgets.widgets.feed import Poller, is_auth_error

__all__ = ["PlatformLoad"]

UNAVAILABLE = "Platform statistics unavailable"


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

    Traits (back-end owned): ``cores_used``/``cores_total`` (cores requested / capacity),
    ``ram_used_gb``/``ram_total_gb``, ``cores_max``/``ram_max_gb`` (the largest session the
    platform allows per session), ``history`` ``[[epoch, cores_used, ram_used_gb], ...]`` (None values
    for failed samples), ``unavailable`` (a message while stats cannot be read) and
    ``retry_at`` (epoch seconds of the next attempt then).

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
    history = traitlets.List().tag(sync=True)
    history_size = traitlets.Int(60).tag(sync=True)
    interval = traitlets.Float(30.0).tag(sync=True)
    unavailable = traitlets.Unicode("").tag(sync=True)
    retry_at = traitlets.Float(0.0).tag(sync=True)

    def __init__(
        self, session: Any = None, *, interval: float = 30.0, history_size: int = 60, **kwargs: Any
    ) -> None:
        super().__init__(interval=interval, history_size=history_size, **kwargs)
        self._backend = self._attach(session)
        self._not_before = 0.0  # epoch seconds: Retry-After from the last 503
        self._initial: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._poller: Poller[Any] = Poller(self._poll, fast=interval, slow=interval, name="platform-load")
        # Polls once now, then every `interval` while a view is visible; closed with the widget.
        self._sub = self._track(self._poller, self._on_poll)

    # -- public ------------------------------------------------------------------------------------

    def refresh(self) -> concurrent.futures.Future[Any]:
        """Sample now (still no sooner than a server's Retry-After); returns a future."""
        return self._poller.refresh_now()

    # -- polling ------------------------------------------------------------------------------------

    async def _poll(self) -> Any:
        wait = self._not_before - time.time()
        if wait > 0:  # the platform asked us to come back later
            await asyncio.sleep(wait)
        return await self._backend.stats()

    def _on_poll(self, stats: Any, error: BaseException | None) -> None:
        """Poller callback (runner thread)."""
        now = time.time()
        if error is not None:
            self._failed(error, now)
        elif stats is not None:
            self._not_before = 0.0
            values = {
                "cores_used": _number(getattr(stats, "cores_requested", None)),
                "cores_total": _number(getattr(stats, "cores_available", None)),
                "ram_used_gb": _number(getattr(stats, "ram_requested_gb", None)),
                "ram_total_gb": _number(getattr(stats, "ram_available_gb", None)),
                "cores_max": _number(getattr(stats, "cores_max", None)),
                "ram_max_gb": _number(getattr(stats, "ram_max_gb", None)),
            }
            sample = [round(now, 3), values["cores_used"], values["ram_used_gb"]]
            self._update(**values, history=self._history_with(sample), unavailable="", retry_at=0.0)
            self._mark_updated()
        if not self._initial.done():
            if error is not None:
                self._initial.set_exception(error)
            else:
                self._initial.set_result(stats)

    def _failed(self, error: BaseException, now: float) -> None:
        if is_auth_error(error):
            # Polling has stopped (no retry storm with a bad token); say why, no countdown.
            message = self._scrub(self._poller.describe_failure(error, "Reading platform statistics"))
            self._update(unavailable=message, retry_at=0.0, error=message, status=message)
            return
        retry_after = error.retry_after if isinstance(error, ServiceUnavailable) else None
        delay = max(retry_after or 0.0, self._poller.interval())
        self._not_before = now + (retry_after or 0.0)
        text = f"{UNAVAILABLE}, retrying in {math.ceil(delay)}s"
        # A 503 is the platform saying "not now"; anything else is also worth an alert.
        error_text = "" if isinstance(error, ServiceUnavailable) else self._scrub(
            f"Reading platform statistics failed: {describe_error(error)}"
        )
        gap = [round(now, 3), None, None]  # the sparkline shows a break, not a stale value
        self._update(
            unavailable=UNAVAILABLE,
            retry_at=now + delay,
            status=text,
            error=error_text,
            history=self._history_with(gap),
        )

    def _history_with(self, sample: list[Any]) -> list[list[Any]]:
        size = max(1, self.history_size)
        return [*self.history, sample][-size:]

    # -- front-end messages -----------------------------------------------------------------------------

    def _on_refresh(self, content: dict[str, Any]) -> None:
        self.refresh()

    # -- representations --------------------------------------------------------------------------------

    def _summary(self) -> str:
        if self.unavailable and self.cores_total is None:
            return self.unavailable
        return f"CPU {_fmt(self.cores_used)} / {_fmt(self.cores_total)} cores, RAM {_fmt(self.ram_used_gb)} / {_fmt(self.ram_total_gb)} GB"

    def _static_html(self) -> str:
        def bar(label: str, used: float | None, total: float | None, unit: str) -> str:
            text = f"{label} {_fmt(used)} / {_fmt(total)} {unit}"
            if used is None or not total:
                return f"<div>{_html.esc(text)}</div>"
            return (
                f"<div>{_html.esc(text)} <meter min='0' max='{total:g}' value='{used:g}' "
                f"aria-label='{_html.esc(label)}'>{_html.esc(text)}</meter></div>"
            )

        body = bar("CPU", self.cores_used, self.cores_total, "cores") + bar(
            "RAM", self.ram_used_gb, self.ram_total_gb, "GB"
        )
        note = self.unavailable or (
            f"Updated {_html.clock_time(self.last_updated)}" if self.last_updated else ""
        )
        return _html.snapshot("Platform load", body, note=note)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
