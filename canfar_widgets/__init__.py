"""canfar-widgets: a fast, correct CANFAR session client and live notebook widgets.

Everything is imported lazily: ``import canfar_widgets.sessions`` (what a headless batch
job needs) never loads ipywidgets or anywidget, and ``import canfar_widgets`` is cheap.

Example:
    >>> from canfar_widgets import Session
    >>> with Session() as session:
    ...     ids = session.create(name="hello", image="skaha/terminal:1.1.2",
    ...                          cmd="echo", args="Hello, World!", replicas=3)
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from canfar_widgets._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Session": "canfar_widgets.sessions",
    "SessionRequestError": "canfar_widgets.errors",
    "AsyncSession": "canfar_widgets.sessions",
    "Batch": "canfar_widgets.batches",
    "ContainerRegistry": "canfar_widgets.models",
    "Configuration": "canfar_widgets.models",
    "chunk": "canfar_widgets.helpers",
    "stripe": "canfar_widgets.helpers",
    "LocalPlatform": "canfar_widgets.local",
    "allow_nested_asyncio": "canfar_widgets.runner",
    "LaunchForm": "canfar_widgets.widgets",
    "SessionTable": "canfar_widgets.widgets",
    "LogViewer": "canfar_widgets.widgets",
    "EventsView": "canfar_widgets.widgets",
    "PlatformLoad": "canfar_widgets.widgets",
    "Dashboard": "canfar_widgets.widgets",
    "watch": "canfar_widgets.widgets",
}

__all__ = [
    "AsyncSession",
    "Batch",
    "Configuration",
    "ContainerRegistry",
    "Dashboard",
    "EventsView",
    "LaunchForm",
    "LocalPlatform",
    "LogViewer",
    "PlatformLoad",
    "Session",
    "SessionRequestError",
    "SessionTable",
    "__version__",
    "allow_nested_asyncio",
    "chunk",
    "stripe",
    "watch",
]


def register_displays() -> None:
    """Teach a running IPython how to show this package's objects (a ``Batch``: its BatchView).

    Why here: ``canfar_widgets.batches`` must not import the widget layer, so the display is
    registered by type name and the widgets are imported only when a batch is shown. Runs at
    import; does nothing outside IPython (and never imports IPython itself).

    Example:
        >>> register_displays()   # in a notebook, ``batch`` alone in a cell now shows its view
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    formatter = getattr(
        getattr(shell, "display_formatter", None), "ipython_display_formatter", None
    )
    if formatter is not None:
        formatter.for_type_by_name("canfar_widgets.batches.batch", "Batch", _show_batch)


def _show_batch(batch: Any) -> None:
    import_module("canfar_widgets.widgets.batch_view").show_batch(batch)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from canfar_widgets.batches import Batch
    from canfar_widgets.errors import SessionRequestError
    from canfar_widgets.helpers import chunk, stripe
    from canfar_widgets.local import LocalPlatform
    from canfar_widgets.models import Configuration, ContainerRegistry
    from canfar_widgets.runner import allow_nested_asyncio
    from canfar_widgets.sessions import AsyncSession, Session
    from canfar_widgets.widgets import (
        Dashboard,
        EventsView,
        LaunchForm,
        LogViewer,
        PlatformLoad,
        SessionTable,
        watch,
    )


register_displays()
