"""In a real kernel, widget clicks are served while a cell blocks in a sync call.

Each test makes a cell wait on something only a click can bring about (or that the test
ends after seeing the click's effect), so the cell ending normally proves the click was
handled during the wait: nothing here measures time. Front-end messages are sent with
jupyter_client exactly as JupyterLab sends them, with subshell routing off (VS Code,
ipykernel 6, the setting disabled) and on (a comm message addressed to a subshell).
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from canfar_widgets.kernel_pump import KernelPump, pump_for_this_thread
from canfar_widgets.local import LocalPlatform

pytestmark = pytest.mark.timeout(240)
in_kernel = pytest.mark.notebook

jupyter_client = pytest.importorskip("jupyter_client")
zmq = pytest.importorskip("zmq")
pytest.importorskip("ipykernel")
from kernel_driver import KernelDriver  # noqa: E402

# -- outside a kernel: nothing happens ---------------------------------------------------------


def test_no_pump_outside_a_kernel_or_off_the_main_thread():
    import ipykernel.kernelbase  # imported but no kernel running (plain IPython, scripts)

    assert not ipykernel.kernelbase.Kernel.initialized()
    assert pump_for_this_thread() is None
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(pump_for_this_thread()))
    thread.start()
    thread.join()
    assert found == [None]


class _FakeKernel:
    """The few kernel attributes the pump uses, ipykernel-6 style (no shell-channel thread)."""

    def __init__(self, session: Any, socket: Any, requeued: list) -> None:
        self.session = session
        self.shell_stream = SimpleNamespace(
            socket=socket, _recv_callback=requeued.append, _recv_copy=False
        )
        self._parent_ident = {"shell": [b"cell-ident"]}
        self._parent = {"header": {"msg_id": "the-cell"}}
        self.handled: list[tuple[str, str, Any, Any]] = []
        self.shell_handlers = {"comm_msg": self.comm_msg, "comm_open": self.comm_msg}
        self.pump: Any = None

    def set_parent(self, ident: Any, parent: Any, channel: str = "shell") -> None:
        self._parent_ident = {"shell": ident}
        self._parent = parent

    def get_parent(self, channel: str | None = None) -> Any:
        return self._parent

    def comm_msg(self, stream: Any, ident: Any, msg: dict) -> None:
        data = msg["content"]["data"]
        nested = (pump_for_this_thread(), self.pump.serve())  # re-entrant: no pump, serves nothing
        self.handled.append(
            (data["n"], self._parent["header"]["msg_id"], msg["header"]["msg_id"], nested)
        )
        if data.get("fail"):
            raise RuntimeError("a broken widget handler")


def test_widget_messages_are_handled_and_the_rest_requeued_untouched():
    context = zmq.Context()
    inbox, sender = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    inbox.bind("inproc://pump-test")
    sender.connect("inproc://pump-test")
    key = b"secret-key"
    front, back = jupyter_client.session.Session(key=key), jupyter_client.session.Session(key=key)
    requeued: list = []
    kernel = _FakeKernel(back, inbox, requeued)
    try:
        pump = KernelPump.attach(kernel)
        assert pump is not None
        kernel.pump = pump
        sent = [
            front.send(sender, "execute_request", {"code": "1"}, ident=b"client"),
            front.send(
                sender, "comm_msg", {"comm_id": "w", "data": {"n": "first"}}, ident=b"client"
            ),
            front.send(sender, "kernel_info_request", {}, ident=b"client"),
            front.send(
                sender,
                "comm_msg",
                {"comm_id": "w", "data": {"n": "broken", "fail": True}},
                ident=b"client",
            ),
            front.send(
                sender,
                "comm_open",
                {"comm_id": "v", "target_name": "t", "data": {"n": "opened"}},
                ident=b"client",
            ),
        ]
        served = 0
        for _ in range(50):  # inproc delivery is asynchronous: read until all five arrived
            served += pump.serve()
            if served + len(requeued) == 5:
                break
            threading.Event().wait(0.02)
    finally:
        inbox.close(linger=0)
        sender.close(linger=0)
        context.term()

    ids = [m["header"]["msg_id"] for m in sent]
    # Widget messages ran in order, each with itself as the parent, none re-entered.
    assert [(n, parent) for n, parent, _, _ in kernel.handled] == [
        ("first", ids[1]),
        ("broken", ids[3]),
        ("opened", ids[4]),
    ]
    assert all(nested == (None, 0) for *_, nested in kernel.handled)
    assert served == 3 and pump.served == 3 and not pump.broken  # a failing handler is only logged
    # The cell's parent is back, so its own output stays with it.
    assert kernel.get_parent()["header"]["msg_id"] == "the-cell"
    assert kernel._parent_ident == {"shell": [b"cell-ident"]}
    # The others were handed back in order, and the kernel can still read them (peeking
    # did not record their signatures, which would make them "duplicate" and dropped).
    assert len(requeued) == 2
    readback = []
    for frames in requeued:
        _, rest = back.feed_identities(frames, copy=False)
        readback.append(back.deserialize(rest, content=True, copy=False)["header"]["msg_id"])
    assert readback == [ids[0], ids[2]]


# -- in a real kernel -----------------------------------------------------------------------------

SETUP = """
    import asyncio, json, threading, ipywidgets
    from canfar_widgets.runner import get_runner
    runner = get_runner()
    button = ipywidgets.Button(description="go")
    events = []            # what the click handler did, in order
    clicked = threading.Event()

    def on_click(_button):
        n = len([e for e in events if e[0] == "start"]) + 1
        events.append(("start", n, threading.current_thread().name))
        if NESTED:
            # A sync call inside a click handler during a wait: must not deadlock or pump again.
            events.append(("nested", n, runner.run(asyncio.sleep(0.6, result="ok"))))
        events.append(("end", n, threading.current_thread().name))
        if n >= CLICKS:
            clicked.set()

    button.on_click(on_click)

    async def until_clicked(limit):
        # Ends early only if the click handler ran; otherwise says so after `limit` seconds.
        for _ in range(int(limit / 0.05)):
            if clicked.is_set():
                return "clicked"
            await asyncio.sleep(0.05)
        return "not clicked"

    print(json.dumps({"model_id": button.model_id}))
"""

WAIT = """
    print("waiting", flush=True)
    outcome = runner.run(until_clicked(60))
    print("outcome", json.dumps([outcome, events]))
"""


def _kernel() -> KernelDriver:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR_", "SKAHA_"))}
    return KernelDriver(env)


def _setup(kernel: KernelDriver, *, nested: bool = False, clicks: int = 1) -> str:
    cell = kernel.run(f"NESTED = {nested!r}\nCLICKS = {clicks}\n" + textwrap.dedent(SETUP))
    return str(json.loads(cell.stdout().strip().splitlines()[-1])["model_id"])


def _outcome(cell) -> list:
    line = next(line for line in cell.stdout().splitlines() if line.startswith("outcome "))
    return json.loads(line.removeprefix("outcome "))


def _click(kernel: KernelDriver, model_id: str, subshell_id: str | None = None) -> None:
    kernel.custom_message(model_id, {"event": "click"}, subshell_id=subshell_id)


@in_kernel
def test_a_click_is_served_while_a_cell_blocks_and_the_next_cell_waits_its_turn():
    with _kernel() as kernel:
        model_id = _setup(kernel)
        waiting = kernel.start(WAIT)
        waiting.read_until(lambda m: waiting.printed("waiting"))
        # Queued during the wait: must run after the waiting cell, not inside it.
        after = kernel.start('print("next cell", json.dumps(events))')
        _click(kernel, model_id)
        waiting.finish()
        after.finish()
        after_cell_output = after.index(lambda m: after.mine(m) and m["msg_type"] == "stream")

    outcome, events = _outcome(waiting)
    assert waiting.errors() == []
    assert outcome == "clicked"  # the handler ran while runner.run() waited
    assert events == [["start", 1, "MainThread"], ["end", 1, "MainThread"]]
    # The queued cell ran once, after the waiting cell ended, and saw the click.
    assert after_cell_output > waiting.idle_index()
    assert after.errors() == [] and after.stdout().count("next cell") == 1
    assert '"start", 1' in after.stdout()


@in_kernel
def test_a_click_handler_that_makes_a_sync_call_does_not_recurse():
    with _kernel() as kernel:
        model_id = _setup(kernel, nested=True, clicks=2)
        waiting = kernel.start(WAIT)
        waiting.read_until(lambda m: waiting.printed("waiting"))
        _click(kernel, model_id)
        _click(kernel, model_id)  # arrives while the first handler's own call waits
        waiting.finish()

    outcome, events = _outcome(waiting)
    assert waiting.errors() == []
    assert outcome == "clicked"
    # One handler at a time: the second click was not served inside the first one's wait.
    assert [e[:2] for e in events] == [
        ["start", 1],
        ["nested", 1],
        ["end", 1],
        ["start", 2],
        ["nested", 2],
        ["end", 2],
    ]
    assert all(e[2] == "ok" for e in events if e[0] == "nested")


@in_kernel
def test_a_click_sent_to_a_subshell_is_served_during_the_wait():
    """JupyterLab's commsOverSubshells: comm messages carry a subshell id."""
    with _kernel() as kernel:
        if not kernel.supports_subshells():
            pytest.skip("[allowed in CI] this ipykernel has no subshells (ipykernel < 7)")
        model_id = _setup(kernel)
        subshell = kernel.create_subshell()
        waiting = kernel.start(WAIT)
        waiting.read_until(lambda m: waiting.printed("waiting"))
        _click(kernel, model_id, subshell_id=subshell)
        waiting.finish()

    outcome, events = _outcome(waiting)
    assert waiting.errors() == []
    assert outcome == "clicked"
    assert [e[:2] for e in events] == [["start", 1], ["end", 1]]


GATE = """#!/bin/sh
while [ ! -e "{go}" ]; do sleep 0.1; done
echo released
"""


WAITS = {
    "Session.wait": 'session.wait(gate, until="finished", timeout=180, interval=0.5)',
    "watch().wait": "watch([gate], session=session).wait(timeout=180)",
}


@in_kernel
@pytest.mark.parametrize("waiter", sorted(WAITS))
def test_a_launch_click_is_served_while_a_wait_blocks(tmp_path, clean_home, waiter):
    """The issue's case: LaunchForm's Launch during a wait on a running job."""
    go = tmp_path / "go"
    gate = tmp_path / "gate.sh"
    gate.write_text(GATE.format(go=go))
    gate.chmod(0o755)
    image = "images.canfar.net/skaha/terminal:1.1.2"
    with LocalPlatform(start_delay=0.1, headless_start_delay=0.0) as platform:
        env = {
            k: v for k, v in os.environ.items() if not k.upper().startswith(("CANFAR_", "SKAHA_"))
        }
        env.update(CANFAR_URL=platform.url, CANFAR_TOKEN=platform.token, HOME=str(clean_home))
        with KernelDriver(env) as kernel:
            setup = kernel.run(f"""
                import json
                from canfar_widgets import LaunchForm, Session, watch
                session = Session()
                form = LaunchForm(session=session)
                form._ready.result(30)
                [gate] = session.create(name="gate", image={image!r}, cmd={str(gate)!r})
                print(json.dumps({{"model_id": form.model_id, "gate": gate}}))
            """)
            ids = json.loads(setup.stdout().strip().splitlines()[-1])
            waiting = kernel.start(f"""
                gate = {ids["gate"]!r}
                print("waiting", flush=True)
                [record] = {WAITS[waiter]}
                status = record["status"] if isinstance(record, dict) else record.state
                print("after wait", json.dumps([status, form.last_launched]))
            """)
            waiting.read_until(lambda m: waiting.printed("waiting"))
            kernel.custom_message(
                ids["model_id"],
                {
                    "kind": "launch",
                    "nonce": "n1",
                    "spec": {
                        "name": "clicked",
                        "kind": "headless",
                        "image": image,
                        "cmd": "true",
                        "resources": "flexible",
                        "replicas": 1,
                    },
                },
            )

            def launched(msg) -> bool:
                data = msg["content"].get("data", {}) if msg["msg_type"] == "comm_msg" else {}
                return data.get("method") == "update" and bool(
                    data.get("state", {}).get("last_launched")
                )

            update = waiting.read_until(launched)
            go.touch()  # only now may the waited-on job end
            waiting.finish()
        names = {s["name"] for s in platform.sessions()}

    assert waiting.errors() == []
    status, last_launched = json.loads(waiting.stdout().split("after wait ", 1)[1])
    assert status == "Completed"
    assert last_launched == update["content"]["data"]["state"]["last_launched"]
    assert len(last_launched) == 1 and "clicked" in names
    # The launch was served and reported while the cell still blocked.
    assert waiting.seen.index(update) < waiting.idle_index()
