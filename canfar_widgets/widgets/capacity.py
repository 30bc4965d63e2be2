"""The platform's numbers, said one way everywhere: cores, RAM in GiB, over-commitment.

Why one module: the platform reports RAM three ways (``"137.439G"`` decimal GB for the
allocation and capacity, ``"32Gi"`` for the per-session ceiling, whole GiB in the form's
options, and ``"4.29"`` GB for a session that asked for 4 GiB), so widgets that format
it themselves contradict each other ("RAM 4" in the form shown as "4.3 GB" elsewhere).
Everything a person reads goes through here: RAM in GiB (the unit the form asks in),
cores as numbers, and requests above capacity called over-committed, not "250%".

The launch form imports :func:`format_gib`, :func:`format_cores` and
:class:`PlatformNumbers` (``session_ceiling_text``) for its hints, so the form and
``PlatformLoad`` say the same numbers.

Example:
    >>> numbers = PlatformNumbers.from_stats(stats)      # a models.Stats
    >>> numbers.cpu_text()
    'CPU: 12.5 of 64 cores requested (20%)'
    >>> numbers.ram_text()
    'RAM: 128 of 512 GiB requested (25%)'
    >>> numbers.session_ceiling_text()
    'Largest session: 8 cores, 32 GiB'
    >>> format_gib(gib_from_gb(4.29))
    '4 GiB'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PlatformNumbers", "format_cores", "format_gib", "gib_from_gb"]

GIB = 2**30


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def gib_from_gb(gb: Any) -> float | None:
    """Decimal GB (as the platform reports memory) -> GiB; None stays None.

    Example:
        >>> round(gib_from_gb(137.439), 2), round(gib_from_gb(4.29), 2)
        (128.0, 4.0)
    """
    number = _finite(gb)
    # One factor, not "* 1e9 / GIB": a huge figure from a bad answer stays finite.
    return None if number is None else _finite(number * (1e9 / GIB))


def format_gib(value: float | None) -> str:
    """``"32 GiB"``, ``"1.5 GiB"``, ``"512 MiB"`` under 1 GiB; ``"–"`` when unknown.

    Values within 1% of a whole number are shown whole: ``4Gi`` reported as ``"4.29"`` GB
    is 3.995 GiB after the platform's rounding, and a person asked for 4.
    """
    if value is None or not math.isfinite(value):
        return "–"
    if 0 < value < 1:
        return f"{round(value * 1024):.0f} MiB"
    nearest = round(value)
    if nearest and abs(value - nearest) <= 0.01 * nearest:
        return f"{nearest:.0f} GiB"
    return f"{value:.1f}".rstrip("0").rstrip(".") + " GiB"


def format_cores(value: float | None) -> str:
    """``"8"``, ``"12.5"``, ``"0.25"``; ``"–"`` when unknown."""
    if value is None or not math.isfinite(value):
        return "–"
    if float(value).is_integer():
        return f"{value:.0f}"
    return (
        f"{value:.2f}".rstrip("0").rstrip(".")
        if value < 1
        else f"{value:.1f}".rstrip("0").rstrip(".")
    )


def _plural(text: str, unit: str) -> str:
    return f"{text} {unit}" if text != "1" else f"{text} {unit.rstrip('s')}"


@dataclass(frozen=True)
class PlatformNumbers:
    """The platform's load and ceilings, RAM in GiB. Build with :meth:`from_stats`.

    ``cores_requested``/``ram_requested_gib``: allocated across the platform;
    ``cores_capacity``/``ram_capacity_gib``: what it has; ``session_cores``/
    ``session_ram_gib``: the largest single session it allows.
    """

    cores_requested: float | None = None
    cores_capacity: float | None = None
    ram_requested_gib: float | None = None
    ram_capacity_gib: float | None = None
    session_cores: float | None = None
    session_ram_gib: float | None = None

    @classmethod
    def from_stats(cls, stats: Any) -> PlatformNumbers:
        """From a :class:`canfar_widgets.models.Stats` (or anything with its properties)."""
        return cls(
            cores_requested=_finite(getattr(stats, "cores_requested", None)),
            cores_capacity=_finite(getattr(stats, "cores_available", None)),
            ram_requested_gib=gib_from_gb(getattr(stats, "ram_requested_gb", None)),
            ram_capacity_gib=gib_from_gb(getattr(stats, "ram_available_gb", None)),
            session_cores=_finite(getattr(stats, "cores_max", None)),
            session_ram_gib=gib_from_gb(getattr(stats, "ram_max_gb", None)),
        )

    @staticmethod
    def _line(label: str, used: float | None, total: float | None, fmt: Any, unit: str) -> str:
        if used is None and total is None:
            return f"{label}: not loaded"
        used_text, total_text = fmt(used), fmt(total)
        if unit == "GiB":  # format_gib carries its unit
            used_text, total_text = used_text.removesuffix(" GiB"), total_text
        else:
            total_text = _plural(total_text, unit)
        text = f"{label}: {used_text} of {total_text} requested"
        if used is None or not total:
            return text
        share = used / total
        if share > 1:
            over = used - total
            over_text = format_gib(over) if unit == "GiB" else _plural(format_cores(over), unit)
            return f"{text}: over-committed by {over_text} (new sessions wait as Pending)"
        return f"{text} ({round(share * 100)}%)"

    def cpu_text(self) -> str:
        """``"CPU: 12.5 of 64 cores requested (20%)"``, or over-committed by so much."""
        return self._line("CPU", self.cores_requested, self.cores_capacity, format_cores, "cores")

    def ram_text(self) -> str:
        """``"RAM: 128 of 512 GiB requested (25%)"``, or over-committed by so much."""
        return self._line("RAM", self.ram_requested_gib, self.ram_capacity_gib, format_gib, "GiB")

    def over_committed(self) -> bool:
        """Whether more is requested than the platform has (of cores or of RAM)."""
        pairs = (
            (self.cores_requested, self.cores_capacity),
            (self.ram_requested_gib, self.ram_capacity_gib),
        )
        return any(used is not None and total and used > total for used, total in pairs)

    def session_ceiling_text(self) -> str:
        """``"Largest session: 8 cores, 32 GiB"``; says so when that is more than the platform has."""
        if self.session_cores is None and self.session_ram_gib is None:
            return ""
        parts = []
        if self.session_cores is not None:
            parts.append(_plural(format_cores(self.session_cores), "cores"))
        if self.session_ram_gib is not None:
            parts.append(format_gib(self.session_ram_gib))
        text = "Largest session: " + ", ".join(parts)
        bigger = []
        if self.session_cores and self.cores_capacity and self.session_cores > self.cores_capacity:
            bigger.append(_plural(format_cores(self.cores_capacity), "cores"))
        if (
            self.session_ram_gib
            and self.ram_capacity_gib
            and self.session_ram_gib > self.ram_capacity_gib
        ):
            bigger.append(format_gib(self.ram_capacity_gib))
        if bigger:
            text += (
                f" (more than this platform's {' and '.join(bigger)}: such a session would wait)"
            )
        return text
