"""Batches: a persistent, re-runnable record of every headless launch in replicas.

``import canfar_widgets.batches`` loads neither the widget stack nor pydantic; see
:mod:`canfar_widgets.batches.batch` for the why, and ``docs/batches.md`` for the guide.

Example:
    >>> from canfar_widgets.batches import Batch
    >>> batch = Batch.open("scan")
    >>> batch.counts
    {'Completed': 12}
"""

from canfar_widgets.batches._outputs import Outputs
from canfar_widgets.batches.batch import (
    Batch,
    BatchSummary,
    ErrorRow,
    Replica,
    ReplicaUsage,
    Usage,
)

__all__ = ["Batch", "BatchSummary", "ErrorRow", "Outputs", "Replica", "ReplicaUsage", "Usage"]
