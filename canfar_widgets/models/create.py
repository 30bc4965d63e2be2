"""``CreateRequest``: one validated launch, strict before anything goes on the wire.

It rejects what the server would reject (or turn into a 500), with a message that names
the field. The words it checks against (kinds, the name rule) live in
:mod:`canfar_widgets.vocabulary`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from canfar_widgets.stacklevel import caller_stacklevel
from canfar_widgets.vocabulary import (
    INTERACTIVE_ONLY_KINDS,
    LIMITS,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    NAME_RULE,
    Kind,
)

__all__ = ["CreateRequest", "normalise_image"]

log = logging.getLogger(__name__)

_IMAGE_ERROR = (
    # Verbatim from the official client (including the missing space) so users can search it.
    "invalid image container reference.must follow the format [registry/]repository/image[:tag]"
)


def normalise_image(image: str) -> str:
    """Expand an image reference as the official client does.

    Two segments get the CANFAR registry prefix; a missing tag becomes ``:latest``.

    Example:
        >>> normalise_image("skaha/astroml")
        'images.canfar.net/skaha/astroml:latest'
        >>> normalise_image("images.canfar.net/skaha/terminal:1.1.2")
        'images.canfar.net/skaha/terminal:1.1.2'
    """
    segments = image.split("/")
    if len(segments) < 2 or len(segments) > 3:
        raise ValueError(_IMAGE_ERROR)
    if len(segments) == 2:
        image = f"images.canfar.net/{image}"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:  # a digest pins the image already
        image += ":latest"
    return image


_SCRIPT_ADVICE = (
    "put the command in a script (in your home directory or the image) and launch that, "
    "e.g. cmd='bash', args='/arc/home/<you>/run.sh'"
)


def _launch_text_problem(text: str | None) -> str | None:
    """What CANFAR would do with ``text`` in cmd/args/env, and what to write instead."""
    if not text:
        return None
    if "$" in text:
        return (
            "CANFAR refuses a '$' (400 'Illegal group reference': the server reads it as part "
            "of a pattern when it writes the job, so variables cannot be expanded this way); "
            + _SCRIPT_ADVICE
        )
    if "\\" in text:
        return (
            "CANFAR silently drops a backslash ('a\\b' arrives as 'ab'); use '/' in paths, or "
            + _SCRIPT_ADVICE
        )
    if '"' in text:
        return (
            "CANFAR fails with a 500 on a double quote (it ends up unescaped in the job's "
            "YAML); use single quotes, e.g. args=\"-c 'print(1)'\", or " + _SCRIPT_ADVICE
        )
    return None


class CreateRequest(BaseModel):
    """One validated ``create`` call; ``form_fields`` gives the exact wire parameters.

    Validation happens here, before any request, with messages that name the field.
    ``gpu`` is sent as ``gpus`` and ``kind`` as ``type`` (``gpus=``/``type=`` are accepted too).

    Example:
        >>> request = CreateRequest(name="job", image="skaha/terminal:1.1.2",
        ...                         cmd="echo", args=["hello", "world"], replicas=2)
        >>> request.form_fields(1, 2)[:2]
        [('name', 'job-1'), ('image', 'images.canfar.net/skaha/terminal:1.1.2')]
    """

    model_config = ConfigDict(
        defer_build=True,
        populate_by_name=True,
        validate_assignment=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    name: str
    image: str
    cores: int | None = Field(default=None, ge=LIMITS["cores"][0], le=LIMITS["cores"][1])
    ram: int | None = Field(default=None, ge=LIMITS["ram"][0], le=LIMITS["ram"][1])
    kind: Kind = Field(
        default="headless",
        validation_alias=AliasChoices("kind", "type"),
        serialization_alias="type",
    )
    gpu: int | None = Field(
        default=None,
        ge=LIMITS["gpu"][0],
        le=LIMITS["gpu"][1],
        validation_alias=AliasChoices("gpu", "gpus"),
        serialization_alias="gpus",
    )
    cmd: str | None = None
    args: str | None = None
    env: dict[str, str] | None = None
    replicas: int = Field(
        default=1, ge=LIMITS["replicas"][0], le=LIMITS["replicas"][1], exclude=True
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # The server accepts [A-Za-z0-9-]+ but uses the name as a pod hostname (DNS label),
        # so a longer or dash-edged name is a 500 later rather than a 400 now.
        # fullmatch: the pattern's "$" (kept for the browser's twin) lets "job\n" through.
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(f"name: {NAME_RULE}")
        return value

    @field_validator("image")
    @classmethod
    def _check_image(cls, value: str) -> str:
        return normalise_image(value.strip())

    @field_validator("gpu", mode="before")
    @classmethod
    def _no_zero_gpu(cls, value: Any) -> Any:
        # gpus=0 is rejected by the server ("Invalid value for 'gpus': 0").
        if value is not None and not isinstance(value, bool) and value == 0:
            raise ValueError("gpu: 0 is not allowed; omit gpu for none")
        return value

    @field_validator("args", mode="before")
    @classmethod
    def _join_args(cls, value: Any) -> Any:
        # The server splits args on single spaces, so a list is sent space-joined.
        if isinstance(value, (list, tuple)):
            if not all(isinstance(item, str) for item in value):
                raise ValueError("args: must be a string or a list of strings")
            return " ".join(value)
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _stringify_env(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("env: must be a mapping of names to values")
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.strip():
                raise ValueError(
                    f"env: names must be non-empty strings, got {key!r}: CANFAR would write a "
                    "nameless variable into the job, which Kubernetes rejects (a 500, no "
                    "session). Give every value a name, e.g. env={'MODE': 'test'}"
                )
            text = f"{item}"  # stringified as the official client does: f"{key}={value}"
            if "=" in key or "=" in text:
                # Sent anyway, as the official client does, but the server splits KEY=VALUE on
                # '=' and silently drops entries that do not give exactly two parts.
                log.warning("env variable %r contains '=': the server will drop it", key)
            result[key] = text
        return result

    @model_validator(mode="after")
    def _check_launch_text(self) -> CreateRequest:
        # The real server pastes cmd, args and env values into a regex replacement and then
        # into YAML (docs/local-platform.md, "Fidelity"; docs/client-api.md, "What `create` refuses"): say
        # so here, before a request, rather than let CANFAR refuse or corrupt them.
        fields: list[tuple[str, str | None]] = [("cmd", self.cmd), ("args", self.args)]
        fields += [(f"env[{key!r}]", value) for key, value in (self.env or {}).items()]
        for field, text in fields:
            problem = _launch_text_problem(text)
            if problem:
                raise ValueError(f"{field}: {problem}")
        return self

    @model_validator(mode="after")
    def _check_combination(self) -> CreateRequest:
        if (self.cmd or self.args or self.env) and self.kind != "headless":
            raise ValueError("cmd, args, env only allowed for headless sessions.")
        if self.kind in INTERACTIVE_ONLY_KINDS and self.replicas > 1:
            raise ValueError(f"multiple replicas invalid for {self.kind} sessions.")
        if self.replicas > 1 and len(self.name) + len(f"-{self.replicas}") > NAME_MAX_LENGTH:
            raise ValueError(
                f"name: with {self.replicas} replicas the session names become "
                f"'{self.name}-<n>', which must be at most {NAME_MAX_LENGTH} characters"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        # A warning, not an error, as in the official client: desktop/firefly ignore them.
        if self.kind in INTERACTIVE_ONLY_KINDS and (self.cores or self.ram):
            warnings.warn(
                f"cmd, args, cores and ram ignored for {self.kind} sessions.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    @property
    def gpus(self) -> int | None:
        """Alias of ``gpu`` (the wire name and the official model's field name)."""
        return self.gpu

    def session_name(self, replica: int, total: int | None = None) -> str:
        """The name sent for ``replica`` (1-based): suffixed ``-<replica>`` only when total > 1."""
        total = self.replicas if total is None else total
        return self.name if total == 1 else f"{self.name}-{replica}"

    def form_fields(self, replica: int = 1, total: int | None = None) -> list[tuple[str, str]]:
        """The POST parameters for one replica, in the official client's exact order.

        ``name, image, cores?, ram?, type, gpus?, cmd?, args?`` then one ``("env", "K=V")``
        per variable: the user's first, then ``REPLICA_ID``/``REPLICA_COUNT`` (which replace a
        user value of the same name in place, as a dict merge does; always sent).

        Example:
            >>> CreateRequest(name="a", image="s/t:1", env={"X": 1}).form_fields(1, 1)
            [('name', 'a'), ('image', 'images.canfar.net/s/t:1'), ('type', 'headless'),
             ('env', 'X=1'), ('env', 'REPLICA_ID=1'), ('env', 'REPLICA_COUNT=1')]
        """
        total = self.replicas if total is None else total
        if not 1 <= replica <= total:
            raise ValueError(f"replica must be between 1 and {total}, got {replica}")
        fields: list[tuple[str, str]] = [
            ("name", self.session_name(replica, total)),
            ("image", self.image),
        ]
        if self.cores is not None:
            fields.append(("cores", str(self.cores)))
        if self.ram is not None:
            fields.append(("ram", str(self.ram)))
        fields.append(("type", self.kind))
        for key, value in (("gpus", self.gpu), ("cmd", self.cmd), ("args", self.args)):
            if value is not None:
                fields.append((key, str(value)))
        environment = {**(self.env or {}), "REPLICA_ID": str(replica), "REPLICA_COUNT": str(total)}
        fields.extend(("env", f"{key}={value}") for key, value in environment.items())
        return fields
