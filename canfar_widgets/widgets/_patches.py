"""Rows that reach a view as patches: the kernel half of ``js/lib/patches.js``.

Why: resending a 1,000-row list on every change costs hundreds of KB per poll. A widget
(``SessionTable``, ``BatchView``) keeps its rows keyed by id with a version counter, sends
each change as one ``{kind: "patch", version, upsert, remove}`` message, and gives a view
the whole list (the ``rows`` and ``rows_version`` traits) when it asks with
``{kind: "snapshot", have}``: on render, or after it saw a version gap.

Example:
    >>> patch_message(4, upsert=[{"id": "k3x9ab2q", "status": "Running"}], remove=[])
    {'kind': 'patch', 'version': 4, 'upsert': [{'id': 'k3x9ab2q', 'status': 'Running'}], 'remove': []}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["patch_message", "send_snapshot"]


def patch_message(
    version: int, upsert: Sequence[Mapping[str, Any]], remove: Sequence[str]
) -> dict[str, Any]:
    """The message that takes a view's rows from ``version - 1`` to ``version``."""
    return {"kind": "patch", "version": version, "upsert": list(upsert), "remove": list(remove)}


def send_snapshot(
    widget: Any, rows: Mapping[str, Mapping[str, Any]], version: int, have: Any
) -> None:
    """Answer a view's ``{kind: "snapshot", have}`` with ``rows`` at ``version``.

    Call it under the lock the patches are sent under, so a snapshot and the patches
    reach the front end in order. A view that has ``version`` already gets nothing; when
    the ``rows``/``rows_version`` traits are current but that view lost them, they are
    sent again rather than set (setting an equal value sends nothing).

    Example:
        >>> send_snapshot(table, table._rows, table._version, content.get("have"))
    """
    if have == version:
        return
    if widget.rows_version != version:
        with widget.hold_sync():
            widget.rows = list(rows.values())
            widget.rows_version = version
    else:
        widget.send_state(["rows", "rows_version"])
