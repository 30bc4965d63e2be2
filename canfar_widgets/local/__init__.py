"""The local platform: the CANFAR skaha v1 session API on loopback, for real.

Headless sessions run their ``cmd`` as local processes; interactive sessions are emulated and
their ``connectURL`` pages are served by the platform itself. It is the embedded default of the
demo, the examples, the browser tests and the benchmarks. See ``docs/local-platform.md``.

Example:
    >>> from canfar_widgets.local import LocalPlatform
    >>> with LocalPlatform() as platform:  # doctest: +SKIP
    ...     print(platform.url)           # http://127.0.0.1:<port>/skaha/v1
    ...     platform.faults.latency = 0.1
"""

from canfar_widgets.local.faults import Faults
from canfar_widgets.local.platform import LocalPlatform, is_loopback

__all__ = ["Faults", "LocalPlatform", "is_loopback"]
