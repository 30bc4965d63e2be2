"""``SessionRecord``: one session as the server reports it, read tolerantly."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canfar_widgets.models.parsing import (
    _LONE_SURROGATE,
    _as_int,
    _encodable,
    _is_none_word,
    _short,
    parse_gigabytes,
    parse_quantity,
    parse_time,
)
from canfar_widgets.vocabulary import FINISHED_STATES, KINDS, canonical_state

__all__ = ["SessionRecord"]

_STRING_FIELDS = (
    "id", "userid", "runAsUID", "runAsGID", "appid", "image", "type", "status", "name",
    "startTime", "expiryTime", "connectURL", "requestedRAM", "requestedCPUCores",
    "requestedGPUCores", "ramInUse", "gpuRAMInUse", "cpuCoresInUse", "gpuUtilization",
)  # fmt: skip


class SessionRecord(BaseModel):
    """One session as the server reports it, read tolerantly.

    Fields keep the server's JSON names and raw strings; unknown fields are kept (extra).
    Nothing here raises on odd input: problems are listed in ``anomalies`` (excluded from
    dumps) and the derived properties return None.

    Example:
        >>> record = SessionRecord.model_validate({"id": "k3x9ab2q",
        ...     "status": "Failed (DeadlineExceeded)", "ramInUse": "101Mi"})
        >>> record.state, record.finished, round(record.ram_in_use_gb, 3)
        ('Failed', True, 0.106)
    """

    model_config = ConfigDict(defer_build=True, extra="allow")

    id: str | None = None
    userid: str | None = None
    runAsUID: str | None = None
    runAsGID: str | None = None
    supplementalGroups: list[int] | None = None
    appid: str | None = None
    image: str | None = None
    type: str | None = None
    status: str | None = None
    name: str | None = None
    startTime: str | None = None
    expiryTime: str | None = None
    connectURL: str | None = None
    requestedRAM: str | None = None
    requestedCPUCores: str | None = None
    requestedGPUCores: str | None = None
    ramInUse: str | None = None
    gpuRAMInUse: str | None = None
    cpuCoresInUse: str | None = None
    gpuUtilization: str | None = None
    isFixedResources: bool | None = None
    anomalies: list[str] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _sanitise(cls, data: Any) -> Any:
        if isinstance(data, SessionRecord):
            return data
        if not isinstance(data, Mapping):
            return {"anomalies": [f"record is {type(data).__name__}, not an object"]}
        clean: dict[str, Any] = {}
        anomalies: list[str] = []
        for key, value in data.items():
            if not isinstance(key, str) or key == "anomalies":
                anomalies.append(f"unexpected key {key!r} dropped")
                continue
            clean[key] = value
        for key in _STRING_FIELDS:
            value = clean.get(key)
            if isinstance(value, str) and _LONE_SURROGATE.search(value):
                anomalies.append(f"{key}: broken UTF-16 surrogate replaced")
                clean[key] = _encodable(value)
                continue
            if value is None or isinstance(value, str):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                clean[key] = str(value)  # e.g. requestedCPUCores sent as a number
            else:
                anomalies.append(f"{key}: unexpected {type(value).__name__} dropped")
                clean[key] = None
        groups = clean.get("supplementalGroups")
        if groups is not None:
            if isinstance(groups, (list, tuple)):
                kept = []
                for group in groups:
                    number = _as_int(group)
                    if number is None:
                        anomalies.append(
                            f"supplementalGroups: {_short(group)} is not an integer, dropped"
                        )
                    else:
                        kept.append(number)
                clean["supplementalGroups"] = kept
            else:
                anomalies.append("supplementalGroups: not a list, dropped")
                clean["supplementalGroups"] = None
        fixed = clean.get("isFixedResources")
        if fixed is not None and not isinstance(fixed, bool):
            word = str(fixed).strip().lower() if isinstance(fixed, (str, int)) else ""
            if word in ("true", "1", "yes"):
                clean["isFixedResources"] = True
            elif word in ("false", "0", "no"):
                clean["isFixedResources"] = False
            else:
                anomalies.append(f"isFixedResources: {_short(fixed)} is not a boolean, dropped")
                clean["isFixedResources"] = None
        for key in ("startTime", "expiryTime"):
            value = clean.get(key)
            if isinstance(value, str) and not _is_none_word(value) and parse_time(value) is None:
                anomalies.append(f"{key}: {_short(value)} is not a timestamp")
        if isinstance(clean.get("type"), str) and clean["type"] not in KINDS:
            anomalies.append(f"type: unknown session type {_short(clean['type'])}")
        clean["anomalies"] = anomalies
        return clean

    @property
    def kind(self) -> str | None:
        """The session type (``type`` on the wire)."""
        return self.type

    @property
    def state(self) -> str:
        """``Pending``, ``Running``, ``Terminating``, ``Completed``, ``Failed`` or ``Unknown``.

        The first word of ``status`` (``"Failed (DeadlineExceeded)"`` is ``Failed``);
        ``Succeeded``/``Error`` read as ``Completed``/``Failed``.
        """
        words = (self.status or "").split()
        return (canonical_state(words[0]) or "Unknown") if words else "Unknown"

    @property
    def finished(self) -> bool:
        """True once the session has completed or failed."""
        return self.state in FINISHED_STATES

    @property
    def start(self) -> datetime | None:
        """``startTime`` as a UTC datetime (None before the session starts)."""
        return parse_time(self.startTime)

    @property
    def expiry(self) -> datetime | None:
        """``expiryTime`` as a UTC datetime."""
        return parse_time(self.expiryTime)

    @property
    def requested_cores(self) -> float | None:
        """Requested CPU cores (fixed sessions only; None when flexible or unknown)."""
        return parse_quantity(self.requestedCPUCores)

    @property
    def requested_ram_gb(self) -> float | None:
        """Requested memory in decimal GB (fixed sessions only)."""
        return parse_gigabytes(self.requestedRAM)

    @property
    def requested_gpus(self) -> float | None:
        """Requested GPUs (0 when none)."""
        return parse_quantity(self.requestedGPUCores)

    @property
    def cpu_in_use(self) -> float | None:
        """CPU cores in use now (from metrics; None when unavailable)."""
        return parse_quantity(self.cpuCoresInUse)

    @property
    def ram_in_use_gb(self) -> float | None:
        """Memory in use now, decimal GB (None when unavailable)."""
        return parse_gigabytes(self.ramInUse)
