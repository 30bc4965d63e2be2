"""Notebook widgets for CANFAR sessions (anywidget; front end in ``js/``).

Every widget takes ``session=`` (this package's ``Session`` or ``AsyncSession``, or an
official ``canfar`` one); without it, a ``Session()`` is built from env/config.

Example:
    >>> from canfar_widgets import Dashboard
    >>> Dashboard()  # launch form, live session table, platform load
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LaunchForm": "canfar_widgets.widgets.launch",
    "SessionTable": "canfar_widgets.widgets.table",
    "LogViewer": "canfar_widgets.widgets.logs",
    "EventsView": "canfar_widgets.widgets.events",
    "PlatformLoad": "canfar_widgets.widgets.load",
    "Dashboard": "canfar_widgets.widgets.dashboard",
    "watch": "canfar_widgets.widgets.batch",
    "BatchWatch": "canfar_widgets.widgets.batch",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'canfar_widgets.widgets' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
