"""Drive a real ipykernel from a test: run cells, act while one blocks, read its IOPub.

The kernel tests of the runner (widget clicks during a wait, interrupts) need to do
something *while* a cell is still running, so this reads IOPub message by message
instead of waiting for the cell to end as nbclient does.

Example:
    >>> with KernelDriver(env) as kernel:
    ...     kernel.run("x = 1")
    ...     cell = kernel.start("print('waiting', flush=True); slow()")
    ...     cell.read_until(lambda m: cell.printed("waiting"))
    ...     kernel.click(model_id)
    ...     cell.finish()
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Mapping
from typing import Any

import jupyter_client


class Cell:
    """One execute request and every IOPub message seen for it (and others) so far."""

    def __init__(self, driver: KernelDriver, msg_id: str) -> None:
        self.driver = driver
        self.msg_id = msg_id

    @property
    def seen(self) -> list[dict[str, Any]]:
        """Every IOPub message the driver has read, this cell's and others', in order."""
        return self.driver.seen

    @property
    def done(self) -> bool:
        return self.idle_index() >= 0

    def mine(self, msg: dict[str, Any]) -> bool:
        return msg["parent_header"].get("msg_id") == self.msg_id

    def printed(self, text: str) -> bool:
        return text in self.stdout()

    def stdout(self) -> str:
        return "".join(
            m["content"].get("text", "")
            for m in self.seen
            if self.mine(m) and m["msg_type"] == "stream" and m["content"].get("name") == "stdout"
        )

    def errors(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.seen if self.mine(m) and m["msg_type"] == "error"]

    def read_until(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Read IOPub until ``condition(msg)`` holds for a message; returns that message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"condition not met in {timeout} s; stdout so far: {self.stdout()!r}"
                )
            try:
                msg = self.driver.client.get_iopub_msg(timeout=min(left, 1.0))
            except Exception:  # queue.Empty: nothing yet
                continue
            self.seen.append(msg)
            if condition(msg):
                return msg

    def finish(self, timeout: float = 90) -> Cell:
        """Read until this cell's kernel status goes idle."""
        if not self.done:
            self.read_until(lambda m: self.done, timeout)
        return self

    def index(self, condition: Callable[[dict[str, Any]], bool]) -> int:
        """Position in :attr:`seen` of the first message meeting ``condition`` (-1 if none)."""
        return next((i for i, m in enumerate(self.seen) if condition(m)), -1)

    def idle_index(self) -> int:
        return self.index(
            lambda m: (
                self.mine(m)
                and m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
            )
        )


class KernelDriver:
    """A python3 kernel started with ``env``, and a client with all channels open."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.manager = jupyter_client.KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=dict(env) if env is not None else None)
        self.client = self.manager.client()
        self.client.start_channels()
        self.seen: list[dict[str, Any]] = []
        try:
            self.client.wait_for_ready(timeout=60)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> KernelDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def start(self, code: str) -> Cell:
        """Send a cell; returns at once (read its messages through the returned Cell)."""
        return Cell(self, self.client.execute(textwrap.dedent(code)))

    def run(self, code: str, timeout: float = 90) -> Cell:
        """Run a cell to its end; a failing cell fails the test with its traceback."""
        cell = self.start(code).finish(timeout)
        errors = cell.errors()
        if errors:
            raise AssertionError("cell failed:\n" + "\n".join(errors[0]["traceback"]))
        return cell

    def send_shell(
        self,
        msg_type: str,
        content: dict[str, Any],
        subshell_id: str | None = None,
        buffers: list[bytes] | None = None,
    ) -> dict[str, Any]:
        """Send a shell-channel message as a front end would (optionally to a subshell)."""
        msg = self.client.session.msg(msg_type, content)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        if buffers:
            msg["buffers"] = buffers
        self.client.shell_channel.send(msg)
        return msg

    def custom_message(
        self, comm_id: str, content: dict[str, Any], subshell_id: str | None = None
    ) -> None:
        """What a widget view's ``model.send(content)`` puts on the wire."""
        self.send_shell(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": content}},
            subshell_id=subshell_id,
        )

    def supports_subshells(self) -> bool:
        """Whether the kernel says it has subshells (ipykernel 7 does, 6 does not)."""
        msg_id = self.client.kernel_info()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = self.client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return "kernel subshells" in reply["content"].get("supported_features", [])
        raise AssertionError("no kernel_info_reply")

    def create_subshell(self) -> str:
        """Ask the kernel for a subshell (what JupyterLab does for commsOverSubshells)."""
        msg = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(msg)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = self.client.get_control_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                assert reply["content"]["status"] == "ok", reply["content"]
                return str(reply["content"]["subshell_id"])
        raise AssertionError("no create_subshell_reply")


def run_and_read(client: Any, code: str, timeout: float = 60) -> tuple[str, list[dict[str, Any]]]:
    """Run ``code`` on a kernel ``client``; its msg_id and every IOPub message (anyone's)
    up to the kernel going idle after it. A failing cell fails the test with its traceback.
    """
    msg_id = client.execute(textwrap.dedent(code))
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(msg)
        if msg["msg_type"] == "error" and msg["parent_header"].get("msg_id") == msg_id:
            raise AssertionError("cell failed: " + "\n".join(msg["content"]["traceback"]))
        if (
            msg["msg_type"] == "status"
            and msg["parent_header"].get("msg_id") == msg_id
            and msg["content"]["execution_state"] == "idle"
        ):
            return msg_id, seen
