"""Count what a widget sends to its front end: for the benchmarks and the traffic tests.

Example:
    >>> with measure_traffic(table) as meter:
    ...     table.refresh().result()
    >>> meter.bytes, meter.count
    (0, 0)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["TrafficMeter", "measure_traffic"]


class TrafficMeter:
    """Counts what a widget sends to the front end (trait updates and custom messages).

    ``bytes`` is the size of each message's JSON content plus its binary buffers: what the
    comm puts on the wire, minus the envelope. For benchmarks and tests.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.bytes = 0

    @property
    def count(self) -> int:
        return len(self.messages)

    def custom(self) -> list[Any]:
        """Contents of the custom messages (``widget.send``) seen."""
        return [m["content"] for m in self.messages if m.get("method") == "custom"]

    def updates(self) -> list[dict[str, Any]]:
        """The ``state`` dicts of the trait updates seen."""
        return [
            m.get("state", {})
            for m in self.messages
            if m.get("method") in ("update", "echo_update")
        ]

    def _record(self, data: Any, buffers: Any) -> None:
        size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
        size += sum(len(memoryview(b).cast("B")) for b in buffers or ())
        self.messages.append(data if isinstance(data, dict) else {"data": data})
        self.bytes += size


@contextmanager
def measure_traffic(widget: Any) -> Iterator[TrafficMeter]:
    """Count the bytes ``widget`` sends inside the ``with`` block.

    Example:
        >>> with measure_traffic(table) as meter:
        ...     table.refresh().result()
        >>> meter.bytes, meter.count
        (0, 0)
    """
    meter = TrafficMeter()
    comm = widget.comm
    original = comm.publish_msg

    def publish(
        msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ):
        if msg_type == "comm_msg":
            meter._record(data, buffers)
        return original(msg_type, data=data, metadata=metadata, buffers=buffers, **keys)

    comm.publish_msg = publish
    try:
        yield meter
    finally:
        comm.publish_msg = original
