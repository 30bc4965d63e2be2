"""The local platform: the CANFAR skaha v1 session API on loopback, for real.

Headless sessions run their ``cmd`` as local processes; interactive sessions are emulated and
their ``connectURL`` pages are served by the platform itself. It is the embedded default of the
demo, the examples, the browser tests and the benchmarks. See ``docs/local-platform.md``.

The names below are imported lazily, so ``canfar_widgets.local.discovery`` (what a batch
tool reads to find a running platform) loads neither tornado nor the server.

Example:
    >>> from canfar_widgets.local import LocalPlatform
    >>> with LocalPlatform() as platform:  # doctest: +SKIP
    ...     print(platform.url)           # http://127.0.0.1:<port>/skaha/v1
    ...     platform.faults.latency = 0.1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canfar_widgets._lazy import lazy_exports

__all__ = ["Faults", "LocalPlatform", "is_loopback"]

_LAZY = {
    "Faults": "canfar_widgets.local.faults",
    "LocalPlatform": "canfar_widgets.local.platform",
    "is_loopback": "canfar_widgets.local.platform",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:
    from canfar_widgets.local.faults import Faults
    from canfar_widgets.local.platform import LocalPlatform, is_loopback
