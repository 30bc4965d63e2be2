"""Notebook widgets for CANFAR sessions (anywidget; front end in ``js/``).

Every widget takes ``session=`` (this package's ``Session`` or ``AsyncSession``, or an
official ``canfar`` one); without it, a ``Session()`` is built from env/config.

Example:
    >>> from canfar_widgets import Dashboard
    >>> Dashboard()  # launch form, live session table, platform load
"""

from __future__ import annotations

from canfar_widgets._lazy import lazy_exports

_EXPORTS = {
    "LaunchForm": "canfar_widgets.widgets.launch_form",
    "SessionTable": "canfar_widgets.widgets.session_table",
    "LogViewer": "canfar_widgets.widgets.log_viewer",
    "EventsView": "canfar_widgets.widgets.events_view",
    "PlatformLoad": "canfar_widgets.widgets.platform_load",
    "Dashboard": "canfar_widgets.widgets.dashboard",
    "watch": "canfar_widgets.widgets.batch_watch",
    "BatchWatch": "canfar_widgets.widgets.batch_watch",
    "BatchView": "canfar_widgets.widgets.batch_view",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
