"""In a real kernel, widget updates keep arriving while another cell blocks.

A cell running ``watch(ids).wait()`` holds the kernel's main thread, so the kernel handles
no incoming messages meanwhile; the widget's updates must still flow out, because they are
sent from the runner thread. This test reads the kernel's IOPub channel directly and counts
the widget's state updates that arrive before the blocking cell finishes.
"""

from __future__ import annotations

import os
import time

import pytest

from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.notebook

jupyter_client = pytest.importorskip("jupyter_client")
from kernel_driver import KernelDriver  # noqa: E402  (after the importorskip)
from kernel_driver import run_and_read as _execute  # noqa: E402


def test_watch_updates_flow_while_a_cell_blocks_in_wait(clean_home):
    with LocalPlatform(start_delay=0.1, headless_start_delay=0.0) as platform:
        env = {**os.environ, "CANFAR_URL": platform.url, "CANFAR_TOKEN": platform.token}
        with KernelDriver(env) as kernel:
            client = kernel.client
            _execute(
                client,
                """
                from canfar_widgets import Session, watch
                session = Session()
                # Two jobs ending ~3 s apart: the batch's counts change twice while the next
                # cell blocks (only changes are sent, so equal jobs would change once).
                image = "images.canfar.net/skaha/terminal:1.1.2"
                ids = (session.create(name="short", image=image, cmd="sleep", args="2")
                       + session.create(name="long", image=image, cmd="sleep", args="5"))
                batch = watch(ids, session=session)
                display(batch)
            """,
            )
            started = time.monotonic()
            _, during = _execute(
                client,
                """
                records = batch.wait(timeout=60)
                print("finished", sorted(r.state for r in records))
            """,
            )
            took = time.monotonic() - started

    updates = [
        m["content"]["data"]["state"]
        for m in during
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]
    printed = "".join(m["content"].get("text", "") for m in during if m["msg_type"] == "stream")
    assert "finished ['Completed', 'Completed']" in printed
    assert took >= 4  # the cell really blocked while the jobs ran (sleep 5)
    # Progress went out while the cell blocked: one job done, then both.
    completed = [u["counts"].get("Completed") for u in updates if "counts" in u]
    assert 1 in completed and completed[-1] == 2, updates
