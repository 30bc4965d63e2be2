"""In a real kernel: batch hooks run on the kernel's main thread, and a slow one stalls no widget.

A BatchView follows a batch whose one replica fails; its ``on_failed`` callback sleeps 3 s.
Meanwhile another widget (a ``watch(ids)`` of an unrelated job) keeps polling. The kernel
records, with its own clock, when the callback ran and on which thread, and when the other
widget updated; the test reads those records after the fact.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import pytest

from canfar_widgets.local import LocalPlatform

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(240)]

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")
from kernel_driver import KernelDriver  # noqa: E402

JOB = """\
import os, time
time.sleep(float(os.environ.get("SLEEP", "0")))
if os.environ.get("FAIL"):
    raise ValueError("bad frame")
"""
POLL = 0.2  # the shared feed's interval in the kernel


def test_a_slow_hook_runs_on_the_main_thread_and_stalls_no_widget(clean_home, tmp_path: Path):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    with LocalPlatform(start_delay=0.1, headless_start_delay=0.05, metrics_interval=0) as platform:
        env = {
            **os.environ,
            "CANFAR_URL": platform.url,
            "CANFAR_TOKEN": platform.token,
            "CANFAR_WIDGETS_BATCH_DB": str(tmp_path / "batches.sqlite"),
        }
        with KernelDriver(env) as kernel:
            setup = kernel.run(f"""
                import json, threading, time
                from canfar_widgets import Batch, Session, watch
                from canfar_widgets.widgets._source import SessionSource
                session = Session()
                feed = SessionSource.of(session).feed
                feed.fast = feed.slow = {POLL}
                image = "images.canfar.net/skaha/terminal:1.1.2"
                other = watch(session.create(name="other", image=image, cmd="sleep", args="12"),
                              session=session)
                updates = []
                send_other = other.send_state  # when its new state goes out to the front end
                def recording_send(key=None):
                    if key and "last_updated" in key:
                        updates.append(time.time())
                    send_other(key)
                other.send_state = recording_send
                batch = Batch.launch("hooked", image, cmd={sys.executable!r}, args={str(job)!r},
                                     env={{"FAIL": "1", "SLEEP": "1"}}, session=session)
                calls = []
                def slow(replica):
                    start = time.time()
                    time.sleep(3)
                    calls.append({{"replica": replica.replica, "start": start, "end": time.time(),
                                   "main": threading.current_thread() is threading.main_thread()}})
                batch.on_failed(slow)
                view = watch(batch)  # the batch's BatchView
                print(json.dumps([view.comm.comm_id, other.comm.comm_id]))
            """)
            for comm_id in json.loads(setup.stdout().strip().splitlines()[-1]):
                kernel.custom_message(comm_id, {"kind": "visibility", "visible": True, "view": "t"})
            # The kernel is idle now: the failure is seen by the view's poll (runner thread)
            # and the callback is handed to the kernel's loop. Wait for it in short cells.
            for _ in range(120):
                cell = kernel.run("print(json.dumps(calls))")
                calls = json.loads(cell.stdout().strip().splitlines()[-1])
                if calls:
                    break
                kernel.run("time.sleep(0.25)")
            assert calls, "the on_failed callback never ran"
            report = kernel.run("print(json.dumps([calls, updates, view.failed]))")
            calls, updates, failed = json.loads(report.stdout().strip().splitlines()[-1])
    [call] = calls
    assert call["replica"] == 1 and call["main"] is True
    assert failed == 1
    # The other widget kept updating while the callback slept: no gap inside the callback's
    # 3 s was longer than one poll interval plus 0.5 s.
    inside = [t for t in updates if call["start"] <= t <= call["end"]]
    edges = [call["start"], *inside, call["end"]]
    gaps = [b - a for a, b in itertools.pairwise(edges)]
    assert len(inside) >= 3, f"the other widget did not update during the callback: {updates}"
    assert max(gaps) <= POLL + 0.5, f"an update was delayed: gaps {gaps}"
