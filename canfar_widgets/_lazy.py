"""Lazy exports (PEP 562): a package lists each public name with the module that defines it,
and a name's module is imported the first time the name is used.

Why: ``import canfar_widgets`` (and ``.models``, ``.local``, ``.widgets``) must stay cheap,
and the client must not load the widget layer, nor a batch tool the local server.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose names live in ``where``.

    A name once imported is stored in the package, so later lookups skip ``__getattr__``.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"Session": "canfar_widgets.sessions"})
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
