"""Static HTML snapshots: what a notebook shows where no widget manager runs.

nbconvert, nbviewer, GitHub and a kernel-less reopened notebook drop widget views and
fall back to the next mimetype (jupyter/nbconvert#1643), so each widget's
``_repr_mimebundle_`` carries a ``text/html`` snapshot built here: plain HTML, no JS,
inline styles (no stylesheet is loaded there), colours from JupyterLab's ``--jp-*``
variables with fallbacks that read on light and dark pages (dask#4058: never hard-code a
light background). Every value is escaped.

Example:
    >>> html = table_html("Sessions", ["Name", "Status"], [["job-1", state_html("Running")]])
    >>> "<table" in html and "<th scope=\\"col\\"" in html
    True
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape

__all__ = [
    "Raw",
    "absolute_time",
    "clock_time",
    "duration",
    "esc",
    "relative_time",
    "snapshot",
    "state_html",
    "table_html",
]

FONT = "var(--jp-ui-font-family, system-ui, -apple-system, 'Segoe UI', sans-serif)"
MONO = "var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, monospace)"
FG = "var(--jp-ui-font-color1, inherit)"
MUTED = "var(--jp-ui-font-color2, #808080)"
BORDER = "var(--jp-border-color2, rgba(128,128,128,0.35))"
HEAD_BG = "var(--jp-layout-color2, rgba(128,128,128,0.12))"
# One per state of canfar_widgets.vocabulary.STATES (records carry only those). Mid-tone
# fallbacks that keep contrast on both light and dark backgrounds.
STATE_COLOURS = {
    "Pending": "var(--jp-warn-color1, #b7791f)",
    "Running": "var(--jp-success-color1, #2f9e44)",
    "Completed": "var(--jp-info-color1, #3b82f6)",
    "Failed": "var(--jp-error-color1, #e03131)",
    "Terminating": MUTED,
}
WARN = "var(--jp-warn-color1, #b7791f)"
ERROR = "var(--jp-error-color1, #e03131)"


class Raw(str):
    """A string already HTML (not escaped again by :func:`table_html`)."""


def esc(value: object) -> str:
    """HTML-escape anything (``None`` -> empty)."""
    return "" if value is None else escape(str(value), quote=True)


def _cell(value: object) -> str:
    return value if isinstance(value, Raw) else esc(value)


def state_html(state: str, title: str | None = None) -> Raw:
    """A session state in text and colour (never colour alone)."""
    colour = STATE_COLOURS.get(state, FG)
    tip = f' title="{esc(title)}"' if title and title != state else ""
    return Raw(f'<span style="color:{colour};font-weight:600"{tip}>{esc(state)}</span>')


def mono(text: object) -> Raw:
    return Raw(
        f'<code style="font-family:{MONO};font-size:0.95em;background:none">{esc(text)}</code>'
    )


def titled(text: object, title: object) -> Raw:
    return Raw(f'<span title="{esc(title)}">{esc(text)}</span>')


def table_html(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    empty: str = "Nothing to show.",
    numeric: Iterable[int] = (),
) -> str:
    """A real ``<table>`` with ``<caption>`` and ``<th scope="col">`` headers."""
    right = set(numeric)
    cell = f"padding:3px 8px;border-bottom:1px solid {BORDER};text-align:left;white-space:nowrap"
    head = "".join(
        f'<th scope="col" style="{cell};background:{HEAD_BG};font-weight:600">{esc(h)}</th>'
        for h in headers
    )
    body = []
    for row in rows:
        tds = "".join(
            f'<td style="{cell}{";text-align:right" if i in right else ""}">{_cell(v)}</td>'
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{tds}</tr>")
    if not body:
        body.append(
            f'<tr><td colspan="{len(headers)}" style="{cell};color:{MUTED};text-align:center">'
            f"{esc(empty)}</td></tr>"
        )
    return (
        f'<table style="border-collapse:collapse;font-variant-numeric:tabular-nums;color:{FG}">'
        f'<caption style="caption-side:top;text-align:left;padding:4px 8px;color:{MUTED}">'
        f"{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def snapshot(title: str, body: str, *, note: str = "", error: str = "") -> str:
    """Wrap a snapshot: root class ``canfar-w``, a heading line, an error and a note."""
    parts = [
        f'<div class="canfar-w canfar-w-static" style="font-family:{FONT};'
        f'font-size:var(--jp-ui-font-size1, 13px);color:{FG};line-height:1.4">',
        f'<div style="font-weight:600;margin:2px 0">{esc(title)}</div>',
    ]
    if error:
        parts.append(
            f'<div role="alert" style="color:{ERROR};border:1px solid {ERROR};'
            f'border-radius:4px;padding:4px 8px;margin:4px 0">{esc(error)}</div>'
        )
    parts.append(body)
    if note:
        parts.append(
            f'<div style="color:{MUTED};font-size:0.92em;margin-top:2px">{esc(note)}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


# -- time formatting (mirrors js/lib/format.js) --------------------------------------------


def clock_time(epoch: float | None) -> str:
    """Local ``hh:mm:ss``."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else ""


def absolute_time(epoch: float | None) -> str:
    """Local ``YYYY-mm-dd hh:mm:ss``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else ""


def relative_time(epoch: float | None, now: float | None = None) -> str:
    """``"5 min ago"``, ``"in 3 h"``, ``"just now"``.

    Example:
        >>> relative_time(1000, now=1000 + 3 * 3600)
        '3 h ago'
    """
    if epoch is None:
        return ""
    now = time.time() if now is None else now
    diff = now - epoch
    seconds = abs(diff)
    if seconds < 5:
        return "just now"
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400:
        text = f"{int(seconds // 3600)} h"
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if diff < 0 else f"{text} ago"


def duration(seconds: float | None) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 05 min"``, ``"2 d 4 h"``.

    Example:
        >>> duration(3 * 3600 + 5 * 60)
        '3 h 05 min'
    """
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    return f"{s // 86400} d {(s % 86400) // 3600} h"
