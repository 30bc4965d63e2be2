"""Shared by ``tests/test_reliability_*.py``: platforms that always stop, and a watch on the
runner that records everything that must never happen there.

Example:
    >>> with running_platform() as platform, RunnerWatch() as watch:
    ...     table = SessionTable(platform.session())
    >>> watch.problems()
    []
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import FAST_PLATFORM, group_alive, group_members, wait_until  # noqa: F401  (re-exported)

from canfar_widgets.local import LocalPlatform
from canfar_widgets.runner import get_runner

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"

# Small timings, as docs/local-platform.md recommends for tests.
FAST = {**FAST_PLATFORM, "kill_grace": 0.3}


@contextmanager
def running_platform(**kwargs: Any) -> Iterator[LocalPlatform]:
    """A started ``LocalPlatform`` (fast timings unless overridden), always stopped."""
    platform = LocalPlatform(**{**FAST, **kwargs})
    platform.start()
    try:
        yield platform
    finally:
        platform.faults.reset()
        platform.stop()


def send(widget: Any, **content: Any) -> None:
    """Deliver a front-end message to a widget exactly as the comm would."""
    widget._dispatch_message(widget, content, [])


def show(*widgets: Any) -> None:
    """Tell widgets a view of theirs is on screen (what the front end sends on render)."""
    for widget in widgets:
        send(widget, kind="visibility", visible=True, view="test-view")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RunnerWatch:
    """Records what must never happen while it is active:

    - anything asyncio's exception handler of the runner loop is given ("Task exception was
      never retrieved", exceptions in callbacks, unclosed transports...);
    - ERROR records from ``canfar_widgets`` (a runner task failing with no ``on_error`` to
      route it to, a failing error handler, a poller loop or subscriber crashing) and from
      ``asyncio``.

    Widget errors shown to the person (the ``error`` trait) are WARNING and not problems.
    """

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []
        self._handler = _Collect()
        self._loggers = [logging.getLogger("canfar_widgets"), logging.getLogger("asyncio")]
        self._loop: Any = None
        self._previous: Any = None

    def __enter__(self) -> RunnerWatch:
        self._loop = get_runner().loop
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(lambda loop, context: self.contexts.append(dict(context)))
        for logger in self._loggers:
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.set_exception_handler(self._previous)

    def problems(self) -> list[str]:
        """Every recorded problem in words (empty when all went well)."""
        found = [
            f"loop exception handler: {c.get('message')!r} {c.get('exception')!r}"
            for c in self.contexts
        ]
        found += [
            f"{r.name} {r.levelname}: {r.getMessage()} {r.exc_info[1]!r}"
            if r.exc_info
            else f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in self._handler.records
        ]
        return found


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (children, grandchildren...), by walking /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] == b"Z":
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
