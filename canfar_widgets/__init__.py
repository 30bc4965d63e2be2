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

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Session": "canfar_widgets.sessions",
    "AsyncSession": "canfar_widgets.sessions",
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
    "Configuration",
    "ContainerRegistry",
    "Dashboard",
    "EventsView",
    "LaunchForm",
    "LocalPlatform",
    "LogViewer",
    "PlatformLoad",
    "Session",
    "SessionTable",
    "__version__",
    "allow_nested_asyncio",
    "chunk",
    "stripe",
    "watch",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'canfar_widgets' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
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
