"""Platform records: ``Stats`` (``view=stats``), ``ResourceOptions``/``Context`` and ``Image``,
all read tolerantly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canfar_widgets.models.parsing import (
    _as_int,
    _encodable,
    parse_gigabytes,
    parse_quantity,
)

__all__ = ["Context", "Image", "ResourceOptions", "Stats"]


def _section(data: Mapping[str, Any], key: str, anomalies: list[str]) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    anomalies.append(f"{key}: not an object, dropped")
    return None


def _first(section: Mapping[str, Any] | None, *paths: str) -> Any:
    """The first present value among dotted ``paths`` inside ``section``."""
    if not section:
        return None
    for path in paths:
        value: Any = section
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    return None


class Stats(BaseModel):
    """Platform load (``GET session?view=stats``), current and older shapes.

    Example:
        >>> stats = Stats.model_validate({"cores": {"requestedCPUCores": 12.5,
        ...     "cpuCoresAvailable": 64.0}, "ram": {"requestedRAM": "137.439G"}})
        >>> stats.cores_requested, stats.cores_available, stats.ram_requested_gb
        (12.5, 64.0, 137.439)
    """

    model_config = ConfigDict(defer_build=True, extra="allow")

    cores: dict[str, Any] | None = None
    ram: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None
    instances: dict[str, Any] | None = None
    anomalies: list[str] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _sanitise(cls, data: Any) -> Any:
        if isinstance(data, Stats):
            return data
        if not isinstance(data, Mapping):
            return {"anomalies": [f"stats is {type(data).__name__}, not an object"]}
        anomalies: list[str] = []
        clean = {
            key: value for key, value in data.items() if isinstance(key, str) and key != "anomalies"
        }
        for key in ("cores", "ram", "gpu", "instances"):
            clean[key] = _section(data, key, anomalies)
        clean["anomalies"] = anomalies
        return clean

    # Each figure: the current field name first, then older servers' names, parsed tolerantly.
    @property
    def cores_requested(self) -> float | None:
        """CPU cores allocated across the platform."""
        return parse_quantity(_first(self.cores, "requestedCPUCores", "requested"))

    @property
    def cores_available(self) -> float | None:
        """CPU capacity of the platform."""
        return parse_quantity(
            _first(self.cores, "cpuCoresAvailable", "coresAvailable", "available")
        )

    @property
    def cores_max(self) -> float | None:
        """Largest CPU request one session may make."""
        return parse_quantity(_first(self.cores, "maxCPUCores.cpuCores", "maxCores.cores"))

    @property
    def ram_requested_gb(self) -> float | None:
        """Memory allocated across the platform, decimal GB."""
        return parse_gigabytes(_first(self.ram, "requestedRAM", "requested"))

    @property
    def ram_available_gb(self) -> float | None:
        """Memory capacity of the platform, decimal GB."""
        return parse_gigabytes(_first(self.ram, "ramAvailable", "available"))

    @property
    def ram_max_gb(self) -> float | None:
        """Largest memory request one session may make, decimal GB."""
        return parse_gigabytes(_first(self.ram, "maxRAM.ram", "maxCPUCores.withRam"))

    @property
    def gpus_requested(self) -> float | None:
        """GPUs allocated (only when the server reports a ``gpu`` section)."""
        return parse_quantity(_first(self.gpu, "requestedGPU", "requestedGPUs"))

    @property
    def gpus_available(self) -> float | None:
        """GPU capacity (only when the server reports a ``gpu`` section)."""
        return parse_quantity(_first(self.gpu, "gpuAvailable", "gpusAvailable"))


def _string_keyed(data: Any) -> dict[str, Any]:
    """A copy of ``data``'s string-keyed entries; ``{}`` when it is not an object at all."""
    if not isinstance(data, Mapping):
        return {}
    return {key: value for key, value in data.items() if isinstance(key, str)}


def _number_or_none(value: Any) -> int | float | None:
    number = parse_quantity(value)
    if number is None:
        return None
    return int(number) if number.is_integer() else number


class ResourceOptions(BaseModel):
    """Choices for one resource in ``GET context`` (``cores``, ``memoryGB`` or ``gpus``)."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    default: int | float | None = None
    defaultRequest: int | float | None = None
    defaultLimit: int | float | None = None
    defaultHeadless: int | float | None = None
    options: list[int | float] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _sanitise(cls, data: Any) -> Any:
        clean = _string_keyed(data)
        for key in ("default", "defaultRequest", "defaultLimit", "defaultHeadless"):
            if key in clean:
                clean[key] = _number_or_none(clean[key])
        options = clean.get("options")
        items = options if isinstance(options, (list, tuple)) else []
        clean["options"] = [n for n in (_number_or_none(item) for item in items) if n is not None]
        return clean


class Context(BaseModel):
    """Resource choices offered by the server (``GET context``), for launch forms.

    Example:
        >>> context = Context.model_validate({"cores": {"default": 2, "options": [1, 2, 4]},
        ...                                   "maxInteractiveSessions": "5"})
        >>> context.cores.options, context.maxInteractiveSessions
        ([1, 2, 4], 5)
    """

    model_config = ConfigDict(defer_build=True, extra="allow")

    cores: ResourceOptions = Field(default_factory=ResourceOptions)
    memoryGB: ResourceOptions = Field(default_factory=ResourceOptions)
    gpus: ResourceOptions = Field(default_factory=ResourceOptions)
    maxInteractiveSessions: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _sanitise(cls, data: Any) -> Any:
        clean = _string_keyed(data)
        for key in ("cores", "memoryGB", "gpus"):
            if not isinstance(clean.get(key), Mapping):
                clean.pop(key, None)
        # A JSON string in file mode ("5"), an integer in LimitRange mode.
        limit = _as_int(clean.get("maxInteractiveSessions"))
        clean["maxInteractiveSessions"] = limit
        return clean


class Image(BaseModel):
    """One launchable image (``GET image``).

    Example:
        >>> Image.model_validate({"id": "images.canfar.net/skaha/astroml:latest",
        ...                       "types": ["notebook", "headless"]}).types
        ['notebook', 'headless']
    """

    model_config = ConfigDict(defer_build=True, extra="allow")

    id: str = ""
    types: list[str] = Field(default_factory=list)
    digest: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _sanitise(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"id": _encodable(data)}
        clean = _string_keyed(data)
        clean["id"] = _encodable(clean["id"]) if isinstance(clean.get("id"), str) else ""
        types = clean.get("types")
        clean["types"] = (
            [_encodable(t) for t in types if isinstance(t, str)]
            if isinstance(types, (list, tuple))
            else []
        )
        digest = clean.get("digest")
        clean["digest"] = _encodable(digest) if isinstance(digest, str) else None
        return clean
