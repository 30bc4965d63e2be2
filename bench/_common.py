"""What the benchmark modules share: the row shape, target verdicts, a plain-text table.

Not a benchmark itself (``python -m bench`` runs only ``bench_*.py``).
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("benchmark", "subject", "value", "unit", "target", "note")


def row(
    benchmark: str, subject: str, value: Any, unit: str, target: str = "", note: str = ""
) -> dict[str, Any]:
    """One table row; floats are rounded to 4 decimals."""
    if isinstance(value, float):
        value = round(value, 4)
    return {
        "benchmark": benchmark,
        "subject": subject,
        "value": value,
        "unit": unit,
        "target": target,
        "note": note,
    }


def verdict(value: float, op: str, limit: float) -> str:
    """``"met"``, or ``"missed by N%"`` (how far past an upper limit, or short of a lower one).

    Example:
        >>> verdict(12.0, "<=", 10), verdict(5.0, ">=", 10), verdict(0, "==", 0)
        ('missed by 20%', 'missed by 50%', 'met')
    """
    if op == "<=":
        return "met" if value <= limit else f"missed by {value / limit - 1:.0%}"
    if op == ">=":
        return "met" if value >= limit else f"missed by {1 - value / limit:.0%}"
    if op == "==":
        return "met" if value == limit else "missed"
    raise ValueError(f"unknown comparison {op!r}")


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned plain text (for running one module as a script)."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in COLUMNS}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in COLUMNS),
        "  ".join("-" * widths[c] for c in COLUMNS),
    ]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)
