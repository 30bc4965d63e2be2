"""No leaks: 200 widgets created and closed leave nothing behind; interpreter exit is quiet.

Measured after each batch: the runner's background tasks (``get_runner().task_count``),
threads (``threading.active_count()``), widgets registered with ipywidgets
(``ipywidgets.widgets.widget._instances``, what ``Widget.widgets`` used to be) and comms
registered with the comm manager, and whether the closed widgets can be garbage collected.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import comm
import pytest
from ipywidgets.widgets.widget import _instances
from reliability_support import TERMINAL, RunnerWatch, running_platform, show, wait_until
from support import dev_mode_complaints

from canfar_widgets.runner import get_runner
from canfar_widgets.widgets.events_view import EventsView
from canfar_widgets.widgets.launch_form import LaunchForm
from canfar_widgets.widgets.log_viewer import LogViewer
from canfar_widgets.widgets.platform_load import PlatformLoad
from canfar_widgets.widgets.session_table import SessionTable

# No user configuration or CANFAR_* variable reaches these tests.
pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("clean_home")]

ROUNDS = 40  # x 5 widget kinds = 200 widgets


def _pooled(thread: threading.Thread) -> bool:
    """Worker threads of executors (asyncio.to_thread): pooled, reused, bounded."""
    return thread.name.startswith(("asyncio_", "ThreadPoolExecutor"))


def footprint() -> dict[str, int]:
    threads = threading.enumerate()
    return {
        "runner tasks": get_runner().task_count,
        "threads": sum(not _pooled(t) for t in threads),
        "ipywidgets instances": len(_instances),
        "comms": len(comm.get_comm_manager().comms),
    }


def initial_work(widget: Any) -> Any:
    """What a widget starts on creation: wait for it (to close it after, not during)."""
    for name in ("_initial", "_ready"):
        future = getattr(widget, name, None)
        if future is not None:
            return lambda: future.done()
    return lambda: widget._first.is_set()  # SessionTable: its first feed delivery


def makers(session: Any, sid: str) -> list[Callable[[], Any]]:
    def table() -> Any:
        widget = SessionTable(session, hide_finished=False)
        widget.show_logs(sid)  # an inline child LogViewer, closed with the table
        return widget

    return [
        table,
        lambda: LogViewer(sid, session),
        lambda: EventsView(sid, session),
        lambda: PlatformLoad(session, interval=0.2),
        lambda: LaunchForm(session, kind="headless", image=TERMINAL, cmd="true"),
    ]


def settle(baseline_tasks: int) -> bool:
    return bool(wait_until(lambda: get_runner().task_count <= baseline_tasks, timeout=20))


def test_200_widgets_created_and_closed_leave_nothing_behind():
    with running_platform() as platform, RunnerWatch() as watch:
        session = platform.session()
        try:
            [sid] = session.create("leak", image=TERMINAL, cmd="echo", args="hello")
            session.wait(sid, until="finished", timeout=15, interval=0.05)
            kinds = makers(session, sid)
            start = get_runner().task_count
            # Warm up: the runner, the session's connection and backend, lazy imports.
            for make in kinds:
                widget = make()
                show(widget)
                widget.close()
            assert settle(start)
            gc.collect()
            before = footprint()
            registered = set(_instances)

            closed: list[weakref.ref] = []
            for n in range(ROUNDS):
                for make in kinds:
                    widget = make()
                    if n % 2:
                        show(widget)  # a view rendered: periodic polling starts
                    if n % 3 == 0:  # sometimes closed mid-request, sometimes after it
                        assert wait_until(initial_work(widget), timeout=10)
                    widget.close()
                    closed.append(weakref.ref(widget))
                    del widget
            assert len(closed) == 5 * ROUNDS == 200
            assert settle(before["runner tasks"]), footprint()
            gc.collect()
            after = footprint()
            pooled = sorted(t.name for t in threading.enumerate() if _pooled(t))
            left = Counter(type(w).__name__ for k, w in _instances.items() if k not in registered)
            after["closed widgets not collectable"] = sum(ref() is not None for ref in closed)
        finally:
            session.close()
    before["closed widgets not collectable"] = 0
    growth = {key: after[key] - before[key] for key in before}
    assert watch.problems() == []
    assert len(pooled) <= 2 * (32 + 4), pooled  # bounded pools (platform's and runner's)
    # No growth. (A negative count is fine: tasks left by earlier tests may finish meanwhile.)
    grown = {key: n for key, n in growth.items() if n > 0}
    assert grown == {}, f"growth {growth}; left registered: {dict(left)}"


EXIT_SCRIPT = """
import sys, time
from canfar_widgets.local import LocalPlatform
from canfar_widgets.widgets.platform_load import PlatformLoad
from canfar_widgets.widgets.log_viewer import LogViewer
from canfar_widgets.widgets.session_table import SessionTable

platform = LocalPlatform(start_delay=0.1, headless_start_delay=0.0, kill_grace=0.3,
                         metrics_interval=0).start()
session = platform.session()
[sid] = session.create("exit", image="{image}", cmd="sleep", args="300")
table = SessionTable(session)
table.feed.fast = table.feed.slow = 0.05
viewer = LogViewer(sid, session)
platform.faults.stats_unavailable = True
load = PlatformLoad(session, interval=0.05)
for widget in (table, viewer, load):
    widget._dispatch_message(widget, {{"kind": "visibility", "visible": True}}, [])
table.refresh().result(10)
time.sleep(0.5)   # polls in flight, PlatformLoad waiting out a Retry-After
print("exiting with everything open", flush=True)
# no close(), no stop(): interpreter exit must clean up quietly
"""


@pytest.mark.timeout(60)
def test_interpreter_exit_with_open_widgets_and_platform_is_quiet(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR_", "SKAHA_"))}
    env["HOME"] = str(tmp_path)
    env["PYTHONWARNINGS"] = "default"  # show ResourceWarnings and friends if any
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(EXIT_SCRIPT.format(image=TERMINAL))],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting with everything open"
    for bad in (
        "Event loop is closed",
        "Task was destroyed but it is pending",
        "Traceback",
        "ResourceWarning",
        "never awaited",
    ):
        assert bad not in proc.stderr
    assert dev_mode_complaints(proc.stderr) == []
