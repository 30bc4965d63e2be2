"""In a real kernel, observers of widget traits run on the main thread and never hold the runner.

Issue 15, item 22: a user's observer ran on the runner thread, so a 3 s observer froze every
widget and one calling a sync ``Session`` method turned a successful launch into "Launch
failed". Each test here starts a real ipykernel, makes the runner change traits, and reads
what the kernel recorded (threads, and ``time.time()`` stamps compared only for order).
The last test checks item 19 at the protocol level: a displayed widget's snapshot output is
replaced by ``update_display_data`` as its state changes.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.notebook

jupyter_client = pytest.importorskip("jupyter_client")
from kernel_driver import KernelDriver  # noqa: E402  (after the importorskip)
from kernel_driver import run_and_read as _execute  # noqa: E402

PROBE = """
    import asyncio, json, threading, time
    from canfar_widgets.runner import get_runner
    from canfar_widgets.widgets._base import CanfarWidget

    class Probe(CanfarWidget):
        pass

    marks = {}
    def stamp(name):
        marks[name] = time.time()
        marks[name + "_thread"] = threading.current_thread().name
"""


@pytest.fixture
def kernel(clean_home):
    with LocalPlatform(start_delay=0.1, headless_start_delay=0.0) as platform:
        env = {**os.environ, "CANFAR_URL": platform.url, "CANFAR_TOKEN": platform.token}
        with KernelDriver(env) as kernel:
            _execute(kernel.client, PROBE)
            yield kernel.client


def _result(client: Any, code: str) -> Any:
    """Run ``code`` (whose last line prints JSON) and return what it printed, parsed."""
    _, seen = _execute(client, code)
    printed = "".join(m["content"].get("text", "") for m in seen if m["msg_type"] == "stream")
    return json.loads(printed.strip().splitlines()[-1])


def test_a_slow_observer_runs_on_the_main_thread_and_other_widgets_update_meanwhile(kernel):
    _execute(
        kernel,
        """
        a, b = Probe(), Probe()
        def slow(change):
            stamp("slow_start")
            time.sleep(3)
            stamp("slow_end")
        a.observe(slow, "status")
        b.observe(lambda change: stamp("b_observed"), "status")
        send_b = b.send_state
        def recording_send(key=None):  # when b's new state goes out to the front end
            if key and "status" in key:
                stamp("b_sent")
            send_b(key)
        b.send_state = recording_send

        async def changes():
            a._update(status="a changed")
            await asyncio.sleep(0.5)  # a's observer is running (3 s) by now
            b._update(status="b changed")
            stamp("runner_done")
        get_runner().spawn(changes())
    """,
    )
    marks = _result(
        kernel,
        """
        while "b_observed" not in marks:
            time.sleep(0.05)
        print(json.dumps(marks))
    """,
    )
    assert marks["slow_start_thread"] == "MainThread"
    assert marks["b_observed_thread"] == "MainThread"
    assert marks["b_sent_thread"] != "MainThread"
    # b's update went out while a's observer still ran: the runner was not held by it ...
    assert marks["slow_start"] < marks["b_sent"] < marks["slow_end"]
    assert marks["runner_done"] < marks["slow_end"]
    # ... and b's own observer ran after, in order, on the main thread.
    assert marks["b_observed"] >= marks["slow_end"]


def test_observers_run_while_a_cell_blocks_in_a_sync_wait(kernel):
    marks = _result(
        kernel,
        """
        w = Probe()
        w.observe(lambda change: stamp("observed"), "status")
        async def later():
            await asyncio.sleep(0.5)
            w._update(status="changed while the cell waits")
            await asyncio.sleep(1.5)
        get_runner().run(later())  # blocks this cell for 2 s
        stamp("wait_returned")
        print(json.dumps(marks))
    """,
    )
    assert marks["observed_thread"] == "MainThread"
    assert marks["observed"] < marks["wait_returned"]


def test_an_observer_making_a_sync_session_call_does_not_fail_the_launch(kernel):
    _execute(
        kernel,
        """
        from canfar_widgets import LaunchForm, Session
        session = Session()
        form = LaunchForm(session=session, name="observed", kind="headless",
                          image="images.canfar.net/skaha/terminal:1.1.2", cmd="sleep", args="1")
        form._ready.result(30)
        seen = []
        def on_launch(change):
            stamp("observer")
            seen.append(sorted(s["id"] for s in session.fetch()))  # a sync call, on the main thread
        form.observe(on_launch, "last_launched")
        future = form.launch()
    """,
    )
    # A cell busy in plain Python (no sync wait of ours) runs no observers: they run after it.
    _execute(kernel, "ids = future.result(60)")
    marks = _result(
        kernel,
        """
        print(json.dumps({"ids": ids, "seen": seen, "error": form.error, "status": form.status,
                          "thread": marks["observer_thread"]}))
    """,
    )
    assert marks["error"] == ""
    assert marks["status"].startswith("Launched 1 session"), marks["status"]
    assert marks["thread"] == "MainThread"
    assert set(marks["ids"]) <= set(marks["seen"][0])


def test_a_displayed_widget_keeps_its_snapshot_output_current(kernel):
    """Item 19 at the protocol level: the snapshot output follows the state by display id."""
    _, shown = _execute(
        kernel,
        """
        class Snap(Probe):
            snapshot_interval = 0.3
            def _static_html(self):
                return f"<p>status: {self.status}</p>"
        s = Snap()
        s._update(status="at display")
        display(s)
    """,
    )
    displays = [m["content"] for m in shown if m["msg_type"] == "display_data"]
    view, snap = displays
    assert "application/vnd.jupyter.widget-view+json" in view["data"]
    assert "text/html" not in view["data"]
    display_id = snap["transient"]["display_id"]
    assert "status: at display" in snap["data"]["text/html"]

    _, during = _execute(
        kernel,
        """
        async def changes():
            for n in range(10):
                s._update(status=f"change {n}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)
        get_runner().run(changes())
    """,
    )
    updates = [m["content"] for m in during if m["msg_type"] == "update_display_data"]
    assert updates and all(u["transient"]["display_id"] == display_id for u in updates)
    assert "status: change 9" in updates[-1]["data"]["text/html"]
    assert len(updates) < 10  # throttled: changes in between are merged
