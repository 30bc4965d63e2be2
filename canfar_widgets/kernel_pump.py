"""Serve a Jupyter kernel's widget messages while a sync call blocks its main thread.

Why: a cell that blocks in ``Session.wait()`` or ``watch(ids).wait()`` holds the kernel's
main thread, and the kernel reads incoming messages only between cells, so a "Launch"
click on a widget would wait until the cell ends. ``Runner.run`` therefore calls
:meth:`KernelPump.serve` between its short waits (once it has waited a little, so quick
calls cost nothing). Like jupyter-ui-poll, it reads the kernel's pending shell messages,
handles the widget ones (``comm_open``, ``comm_msg``, ``comm_close``) at once, and hands
every other message (another cell's ``execute_request``, completions, ...) back to the
kernel untouched and in order, to run after the current cell as it would have. It also
runs the callbacks queued for the main thread (:mod:`canfar_widgets.main_thread`: trait
observers of changes made on the runner), which the blocked kernel loop cannot run.

Where it applies: only in an ipykernel kernel, only on its main thread, and never inside
a message it is already serving (a click handler that itself makes a sync call waits
without pumping: no recursion, no deadlock). Scripts, plain IPython and other threads get
``None`` from :func:`pump_for_this_thread` and nothing changes. Where the kernel already
serves widget messages on a subshell thread (ipykernel 7 with JupyterLab's
``commsOverSubshells``), those messages never reach the main thread, so there is nothing
to do for them; the ones still routed to the main thread are served here.

It relies on a few ipykernel internals (the main shell's inbox socket and its stream
callback, ``set_parent``); when they are not as expected it declines (returns ``None``),
and an unexpected failure while serving turns the pump off for the rest of that kernel's
life (logged once), never the wait itself. A failing widget handler is only logged, as
ipykernel does.

Example (what ``Runner.run`` does; normally never called by hand):
    >>> pump = pump_for_this_thread()   # None outside a kernel's main thread
    >>> if pump is not None:
    ...     pump.serve()                # widget messages handled; others requeued
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
import threading
from typing import Any

from canfar_widgets.main_thread import run_pending as run_main_thread_calls
from canfar_widgets.main_thread import running_kernel as _running_kernel

__all__ = ["KernelPump", "pump_for_this_thread"]

log = logging.getLogger(__name__)

# The messages a widget click or trait change sends; ipykernel itself serves exactly these
# concurrently with a running async cell.
WIDGET_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})

# At most this many messages per serve(): a flood of widget traffic cannot starve the wait.
_BATCH = 64

# True while serve() runs (main thread only): a sync call made by a handler does not pump.
_serving = False
# One pump per kernel instance (the kernel's sockets do not change while it lives).
_pumps: dict[int, KernelPump] = {}


def _after_fork_in_child() -> None:
    # A forked child shares the kernel's memory but not its sockets (zmq is not fork-safe):
    # it must never read them. Its waits simply wait.
    global _forked
    _forked = True
    _pumps.clear()


_forked = False
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def pump_for_this_thread() -> KernelPump | None:
    """The pump to call while this thread blocks, or ``None`` where there is none.

    ``None`` outside an ipykernel kernel, off its main thread, while a pump is already
    serving (re-entrant call from a widget handler), in a process forked from the kernel,
    or when this ipykernel's internals are not the expected ones.
    """
    if _serving or _forked or threading.current_thread() is not threading.main_thread():
        return None
    kernel = _running_kernel()
    if kernel is None:
        return None
    pump = _pumps.get(id(kernel))
    if pump is None or pump.kernel is not kernel:
        pump = KernelPump.attach(kernel)
        if pump is None:
            return None
        _pumps.clear()
        _pumps[id(kernel)] = pump
    return None if pump.broken else pump


class KernelPump:
    """Reads the main shell's pending messages; serves widget ones, requeues the rest.

    Build it with :meth:`attach`; use it only on the kernel's main thread.
    """

    def __init__(self, kernel: Any, socket: Any, stream: Any, reply_stream: Any) -> None:
        self.kernel = kernel
        self._socket = socket  # the main shell's inbox (a zmq socket)
        self._stream = stream  # the ZMQStream that normally reads it on the kernel loop
        self._reply_stream = reply_stream  # what ipykernel passes to shell handlers
        self._copy = bool(getattr(stream, "_recv_copy", False))
        # The kernel's own loop (tornado's IOLoop wraps it): requeued messages must run there.
        self._loop: asyncio.AbstractEventLoop | None = getattr(
            getattr(kernel, "io_loop", None), "asyncio_loop", None
        )
        self.broken = False
        self.served = 0  # widget messages handled so far (tests and logs read it)
        self.requeued = 0

    @classmethod
    def attach(cls, kernel: Any) -> KernelPump | None:
        """A pump for ``kernel``'s main shell, or ``None`` if its layout is not known."""
        try:
            import zmq  # noqa: F401  (serve() needs it; every ipykernel has it)

            channel = getattr(kernel, "shell_channel_thread", None)
            if channel is not None:
                # ipykernel 7: a shell-channel thread routes each message to the main shell
                # (or a subshell) through an inproc socket pair read by the kernel loop.
                manager = channel.manager
                pair = manager._shell_channel_to_main
                socket, stream = pair.to_socket, pair.to_stream
                reply_stream = manager.get_subshell_to_shell_channel_socket(None)
            else:
                # ipykernel 6: the kernel loop reads the shell socket itself.
                stream = kernel.shell_stream
                socket = stream.socket
                reply_stream = stream
            if stream is None or socket is None or stream.socket is not socket:
                return None
            if not callable(getattr(stream, "_recv_callback", None)):
                return None
            if not all(
                callable(getattr(kernel, name, None)) for name in ("set_parent", "get_parent")
            ):
                return None
        except Exception:
            log.debug("kernel pump: unknown ipykernel layout", exc_info=True)
            return None
        return cls(kernel, socket, stream, reply_stream)

    def serve(self) -> int:
        """Handle the widget messages waiting now; hand the others back. Returns how many served.

        Safe to call often: with nothing pending it is one non-blocking ``recv``.
        """
        global _serving
        if self.broken or _serving:
            return 0
        import zmq

        _serving = True
        served = 0
        try:
            for _ in range(_BATCH):
                try:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=self._copy)
                except zmq.Again:
                    break
                if self._dispatch(frames):
                    served += 1
            # Trait observers queued for this (blocked) main thread run here, in order.
            run_main_thread_calls()
        except Exception:
            # A kernel this code does not understand: stop pumping for good, keep waiting.
            self.broken = True
            log.warning("kernel pump disabled after an unexpected error", exc_info=True)
        finally:
            _serving = False
        self.served += served
        return served

    # -- internals ----------------------------------------------------------------------

    def _dispatch(self, frames: list[Any]) -> bool:
        """Serve ``frames`` if it is a widget message (True), else requeue it (False)."""
        session = self.kernel.session
        msg_type = None
        try:
            idents, rest = session.feed_identities(frames, copy=self._copy)
            # content=False only peeks: the signature is not recorded, so the kernel can
            # still accept this very message when it is handed back.
            header = session.deserialize(rest, content=False, copy=self._copy)["header"]
            msg_type = header.get("msg_type")
        except Exception:
            pass  # not ours to judge (a control frame, a bad message): the kernel decides
        if msg_type not in WIDGET_MESSAGES:
            self._requeue(frames)
            return False
        msg = session.deserialize(rest, content=True, copy=self._copy)
        self._handle(idents, msg)
        return True

    def _requeue(self, frames: list[Any]) -> None:
        """Give ``frames`` to the kernel as if its loop had read them: they run after this cell.

        ipykernel 7 turns them into tasks that queue (in order) on the main shell's lock,
        ahead of anything the loop reads later; ipykernel 6 puts them on its message queue.
        """
        _keep(self._stream._recv_callback(frames), self._loop)
        self.requeued += 1

    def _handle(self, idents: list[Any], msg: dict[str, Any]) -> None:
        """Run the kernel's own handler for a widget message, with the message as parent."""
        kernel = self.kernel
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        saved = _current_parent(kernel)
        _flush_output()  # what the cell printed so far stays with the cell
        kernel.set_parent(idents, msg, channel="shell")
        try:
            # An async handler finishes once the kernel loop turns again.
            _keep(handler(self._reply_stream, idents, msg), self._loop)
        except Exception:
            log.error("widget message handler failed", exc_info=True)
        finally:
            _flush_output()  # a handler's prints go with its message, not with the cell
            kernel.set_parent(*saved, channel="shell")


# Tasks scheduled on the kernel loop from here: asyncio keeps only weak references to tasks.
_scheduled: set[asyncio.Future[Any]] = set()


def _keep(result: Any, loop: asyncio.AbstractEventLoop | None) -> None:
    """Schedule ``result`` on the kernel loop if it is awaitable, holding it until done."""
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result, loop=loop)
        _scheduled.add(task)
        task.add_done_callback(_scheduled.discard)


def _current_parent(kernel: Any) -> tuple[Any, Any]:
    """(ident, parent message) of the running cell, to restore after a handler."""
    parent = kernel.get_parent("shell")
    context_var = getattr(kernel, "_shell_parent_ident", None)
    if context_var is not None and hasattr(kernel, "_get_shell_context_var"):
        ident = kernel._get_shell_context_var(context_var)  # ipykernel 7
    else:
        idents = getattr(kernel, "_parent_ident", None)  # ipykernel 6: {channel: ident}
        ident = idents.get("shell") if isinstance(idents, dict) else idents
    return ident, parent


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
