"""Pydantic models: what we send, what the server answers, and the saved configuration.

Two rules shape this module:

- Requests are strict. ``CreateRequest`` rejects what the server would reject (or turn into a
  500), with a message that names the field, before anything goes on the wire.
- Answers are tolerant. ``SessionRecord``, ``Stats``, ``Context`` and ``parse_events`` accept
  whatever a real or older server sends (``"<none>"``, ``"101Mi"``, ``"Failed
  (DeadlineExceeded)"``, missing keys) and never raise; oddities land in ``anomalies``.

The configuration models read and write ``~/.canfar/config.yaml`` as the official ``canfar``
client does, so a ``canfar login`` is picked up unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from canfar_widgets.errors import ConfigurationError


def _yaml() -> Any:
    """PyYAML, imported on first use: most processes never read the config file."""
    import yaml

    return yaml

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "STATUSES",
    "ActiveSelection",
    "Configuration",
    "ConsoleSettings",
    "ContainerRegistry",
    "Context",
    "CreateRequest",
    "Credential",
    "Event",
    "Image",
    "Kind",
    "OIDCCredential",
    "ResourceOptions",
    "Server",
    "SessionRecord",
    "Stats",
    "Status",
    "X509Credential",
    "caller_stacklevel",
    "default_certificate_path",
    "default_config_path",
    "normalise_image",
    "parse_events",
    "parse_gigabytes",
    "parse_quantity",
    "parse_time",
    "registry_from_environment",
    "server_kind",
    "server_status",
    "write_yaml_atomic",
]

# --------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------

Kind = Literal["desktop", "notebook", "carta", "headless", "firefly", "desktop-app", "contributed"]
"""Session types, as the official client accepts them (``type`` on the wire)."""

Status = Literal["Pending", "Running", "Terminating", "Succeeded", "Completed", "Error", "Failed"]
"""Status words accepted in requests. Servers only report Pending, Running, Terminating,
Completed and Failed; ``Succeeded``/``Error`` come from older documentation."""

KINDS: tuple[str, ...] = get_args(Kind)
STATUSES: tuple[str, ...] = get_args(Status)

# Documentation words -> the words a v1 server actually reports (skaha-v1-server §5.4).
_STATUS_ALIASES = {"Succeeded": "Completed", "Error": "Failed"}


def server_status(word: str) -> str:
    """The status word to send to (or compare with) the server.

    Accepts any case and the documentation words ``Succeeded``/``Error``.

    Example:
        >>> server_status("succeeded")
        'Completed'
        >>> server_status("Running")
        'Running'
    """
    if isinstance(word, str):
        for allowed in STATUSES:
            if word.strip().lower() == allowed.lower():
                return _STATUS_ALIASES.get(allowed, allowed)
    raise ValueError(f"status: {word!r} is not one of {', '.join(STATUSES)}")


def server_kind(word: str) -> str:
    """The session type to send to the server (validated, lower-case).

    Example:
        >>> server_kind("Notebook")
        'notebook'
    """
    if isinstance(word, str) and word.strip().lower() in KINDS:
        return word.strip().lower()
    raise ValueError(f"kind: {word!r} is not one of {', '.join(KINDS)}")


def _env(name: str) -> str | None:
    """An environment variable by case-insensitive name (as pydantic-settings reads them).

    Empty values count as unset: ``export CANFAR_REGISTRY__SECRET=`` should not turn into a
    "secret too short" error.
    """
    value = os.environ.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in os.environ.items():
            if key.lower() == wanted:
                value = candidate
                break
    return value if value else None


# --------------------------------------------------------------------------------------
# Container registry
# --------------------------------------------------------------------------------------


class ContainerRegistry(BaseModel):
    """Credentials for launching private images (sent as ``X-Skaha-Registry-Auth``).

    ``ContainerRegistry()`` with no arguments reads ``CANFAR_REGISTRY__USERNAME``,
    ``CANFAR_REGISTRY__SECRET`` and ``CANFAR_REGISTRY__URL`` (or the older
    ``SKAHA_REGISTRY_USERNAME``/``SKAHA_REGISTRY_SECRET``). The secret never appears in
    ``repr``, ``str`` or ``model_dump()``.

    Example:
        >>> registry = ContainerRegistry(username="bob", secret="s3cret")
        >>> registry.header_value()
        'Ym9iOnMzY3JldA=='
        >>> registry
        ContainerRegistry(url=None, username='bob', secret=SecretStr('**********'))
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)

    url: AnyHttpUrl | None = None
    username: str | None = Field(default=None, min_length=1, max_length=255)
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        # Only a bare ContainerRegistry() consults the environment: explicit values must
        # never be silently mixed with an unrelated shell export.
        if isinstance(data, dict) and not data:
            return registry_from_environment() or {}
        return data

    @model_validator(mode="after")
    def _both_or_neither(self) -> ContainerRegistry:
        # Same words as the official client, so documentation and searches still match.
        if self.username and not self.secret:
            raise ValueError("container registry secret is required.")
        if self.secret and not self.username:
            raise ValueError("container registry username is required.")
        return self

    def header_value(self) -> str | None:
        """``base64("username:secret")`` for ``X-Skaha-Registry-Auth``, or None if unset."""
        if not (self.username and self.secret):
            return None
        raw = f"{self.username}:{self.secret.get_secret_value()}"
        return base64.b64encode(raw.encode()).decode()


def registry_from_environment() -> dict[str, str] | None:
    """Registry fields from the environment, or None when none are set.

    ``CANFAR_REGISTRY__*`` wins; the pre-0.6 ``SKAHA_REGISTRY_*`` names are a fallback.
    """
    found = {
        field: value
        for field in ("url", "username", "secret")
        if (value := _env(f"CANFAR_REGISTRY__{field.upper()}"))
    }
    if not found:
        found = {
            field: value
            for field in ("username", "secret")
            if (value := _env(f"SKAHA_REGISTRY_{field.upper()}"))
        }
    return found or None


# --------------------------------------------------------------------------------------
# Configuration (~/.canfar/config.yaml)
# --------------------------------------------------------------------------------------

_KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# Versions whose layout we read. canfar 1.4 writes 1; canfar 1.5 writes 2, which only drops
# the per-server cores/ram/gpus and console.file and adds fields we keep verbatim (extra).
_READABLE_VERSIONS = (1, 2)


def default_config_path() -> Path:
    """``~/.canfar/config.yaml``, resolved now (tests and users may change ``HOME``)."""
    return Path.home() / ".canfar" / "config.yaml"


def default_certificate_path() -> Path:
    """``~/.ssl/cadcproxy.pem``, resolved now: where ``canfar login`` saves the proxy cert."""
    return Path.home() / ".ssl" / "cadcproxy.pem"


class _ConfigRecord(BaseModel):
    """A part of ``~/.canfar/config.yaml``.

    Unknown keys are kept (a newer canfar may add some, and a save must not drop them);
    validation errors never echo the input (it may hold tokens); schemas are built on
    first use, since most processes never read the config file.
    """

    model_config = ConfigDict(defer_build=True, extra="allow", hide_input_in_errors=True)


class X509Credential(_ConfigRecord):
    """A saved X.509 login: a PEM file holding the proxy certificate and its key."""

    idp: str | None = None
    mode: Literal["x509"] = "x509"
    path: Path | None = None
    expiry: float = 0.0


class OIDCEndpoints(_ConfigRecord):
    """Where the identity provider lives (only ``token`` is needed to refresh)."""

    discovery: str | None = None
    device: str | None = None
    registration: str | None = None
    token: str | None = None


class OIDCClient(_ConfigRecord):
    """The OAuth client registered by ``canfar login``."""

    identity: str | None = None
    secret: SecretStr | None = None


class OIDCTokens(_ConfigRecord):
    """Saved OAuth tokens (secrets: hidden in reprs and dumps)."""

    access: SecretStr | None = None
    refresh: SecretStr | None = None
    token_type: str | None = None
    scope: str | None = None


class OIDCExpiry(_ConfigRecord):
    """Unix timestamps at which the saved tokens expire (None: unknown)."""

    access: float | None = None
    refresh: float | None = None


class OIDCCredential(_ConfigRecord):
    """A saved OIDC login (device flow): tokens plus what is needed to refresh them."""

    idp: str | None = None
    mode: Literal["oidc"] = "oidc"
    endpoints: OIDCEndpoints = Field(default_factory=OIDCEndpoints)
    client: OIDCClient = Field(default_factory=OIDCClient)
    token: OIDCTokens = Field(default_factory=OIDCTokens)
    expiry: OIDCExpiry = Field(default_factory=OIDCExpiry)

    def expired(self, skew: float = 0.0, now: float | None = None) -> bool:
        """True when the access token is missing or expires within ``skew`` seconds."""
        now = datetime.now(timezone.utc).timestamp() if now is None else now
        access = self.token.access.get_secret_value() if self.token.access else ""
        return not access or self.expiry.access is None or self.expiry.access <= now + skew

    @property
    def refreshable(self) -> bool:
        """True when the record holds everything a refresh grant needs, unexpired."""
        refresh_expiry = self.expiry.refresh
        return bool(
            self.endpoints.token
            and self.client.identity
            and self.client.secret
            and self.client.secret.get_secret_value()
            and self.token.refresh
            and self.token.refresh.get_secret_value()
            and (refresh_expiry is None or refresh_expiry > datetime.now(timezone.utc).timestamp())
        )


Credential = Annotated[X509Credential | OIDCCredential, Field(discriminator="mode")]
"""One saved login, ``mode: x509`` or ``mode: oidc``."""


class Server(_ConfigRecord):
    """A Science Platform server: the base URL is ``url + "/" + version``."""

    name: str | None = None
    idp: str | None = None
    uri: str | None = None
    url: str | None = None
    version: str = "v1"
    auths: list[str] = Field(default_factory=list)
    cores: int | None = None
    ram: int | None = None
    gpus: int | None = None

    @property
    def base_url(self) -> str:
        """``https://host/skaha/v1/`` (always with one trailing slash)."""
        if not self.url:
            raise ConfigurationError(f"server {self.name or '?'!r} has no URL configured")
        version = self.version.strip("/")
        return f"{self.url.rstrip('/')}/{version}/" if version else f"{self.url.rstrip('/')}/"


class ActiveSelection(_ConfigRecord):
    """Which saved login and which server are in use."""

    authentication: str = "cadc"
    server: str | None = "canfar"
    servers: dict[str, str] = Field(default_factory=dict)


class ConsoleSettings(_ConfigRecord):
    """The official CLI's console options (kept so saving does not lose them)."""

    width: int = 120
    banner: bool = True
    file: str | None = None


def _default_authentication() -> dict[str, X509Credential | OIDCCredential]:
    return {"cadc": X509Credential(idp="cadc", path=default_certificate_path(), expiry=0.0)}


def _default_servers() -> dict[str, Server]:
    return {
        "canfar": Server(
            name="canfar",
            idp="cadc",
            uri="ivo://cadc.nrc.ca/skaha",
            url="https://ws-uv.canfar.net/skaha",
            version="v1",
            auths=["x509"],
            cores=2,
            ram=16,
            gpus=0,
        )
    }


class Configuration(BaseModel):
    """The ``~/.canfar/config.yaml`` written by ``canfar login``.

    ``Configuration()`` gives the official client's defaults (CADC X.509 login with
    ``~/.ssl/cadcproxy.pem``, server ``https://ws-uv.canfar.net/skaha`` ``v1``) plus a registry
    from ``CANFAR_REGISTRY__*``; ``Configuration.load()`` reads the file.

    Example:
        >>> config = Configuration.load()
        >>> config.active_server().base_url
        'https://ws-uv.canfar.net/skaha/v1/'
        >>> private = Configuration(registry=ContainerRegistry(username="bob", secret="s"))
        >>> private.registry.header_value()  # Session(config=private) sends it with each request
        'Ym9iOnM='
    """

    model_config = ConfigDict(defer_build=True, extra="allow", validate_assignment=True, hide_input_in_errors=True)

    version: int = 1
    active: ActiveSelection = Field(default_factory=ActiveSelection)
    authentication: dict[str, Credential] = Field(default_factory=_default_authentication)
    servers: dict[str, Server] = Field(default_factory=_default_servers)
    registry: ContainerRegistry | None = None
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    # Where this configuration was read from; refreshed OIDC tokens are saved back there.
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # Environment beats the file (as in canfar); an explicit keyword beats both.
        if "registry" not in data or data.get("_from_file"):
            env_registry = registry_from_environment()
            if env_registry:
                data["registry"] = env_registry
        data.pop("_from_file", None)
        # The file keys records by name and may omit the name inside; fill it in.
        for section, field in (("authentication", "idp"), ("servers", "name")):
            entries = data.get(section)
            if isinstance(entries, dict):
                data[section] = {
                    key: ({**value, field: key} if isinstance(value, dict) else value)
                    for key, value in entries.items()
                }
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> int:
        if isinstance(value, str) and value.strip().isdecimal():
            value = int(value)
        if isinstance(value, bool) or value not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported configuration version {value!r} (expected 1)")
        return value

    @model_validator(mode="after")
    def _check_references(self) -> Configuration:
        for section in ("authentication", "servers"):
            for key in getattr(self, section):
                if not _KEY_PATTERN.match(key):
                    raise ValueError(
                        f"{section}: invalid name {key!r} (must match {_KEY_PATTERN.pattern})"
                    )
        if self.active.authentication not in self.authentication:
            raise ValueError(
                f"active authentication {self.active.authentication!r} not found in authentication"
            )
        if self.active.server is not None and self.active.server not in self.servers:
            raise ValueError(f"active server {self.active.server!r} not found in servers")
        return self

    # -- reading -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Configuration:
        """Read the YAML file (default ``~/.canfar/config.yaml``); a missing file gives defaults.

        Raises:
            ConfigurationError: unreadable YAML, not a mapping, an unknown ``version`` or
                invalid content. The message says how to reset (secrets are never shown).

        Example:
            >>> Configuration.load("/tmp/none.yaml").active.server
            'canfar'
        """
        target = Path(path).expanduser() if path is not None else default_config_path()
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            config = cls()
            config._path = target
            return config
        except OSError as err:
            raise _reset_error(target, [f"cannot be read ({err.strerror or err})"]) from None
        try:
            data = _yaml().safe_load(text)
        except _yaml().YAMLError as err:
            raise _reset_error(target, [f"invalid YAML ({' '.join(str(err).split())})"]) from None
        if not isinstance(data, dict):
            raise _reset_error(
                target, [f"expected a mapping of settings, found {type(data).__name__}"]
            )
        if "version" not in data:
            raise _reset_error(target, ["version is missing (expected 1)"])
        try:
            config = cls.model_validate({**data, "_from_file": True})
        except ValidationError as err:
            raise _reset_error(target, _problems(err)) from None
        config._path = target
        return config

    @property
    def path(self) -> Path | None:
        """The file this configuration was loaded from (None when built in memory)."""
        return self._path

    def active_credential(self, idp: str | None = None) -> X509Credential | OIDCCredential | None:
        """The saved login named ``idp`` (default: the active one), or None."""
        return self.authentication.get(idp or self.active.authentication)

    def active_server(self) -> Server:
        """The active server.

        Raises:
            ConfigurationError: no active server is selected.
        """
        name = self.active.server
        if name is None or name not in self.servers:
            raise ConfigurationError(
                f"no active server in the CANFAR configuration (login {self.active.authentication!r}); "
                "run `canfar login` or pass url="
            )
        return self.servers[name]

    # -- writing -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the YAML atomically (temp file in the same directory, then ``os.replace``).

        The file holds secrets in plain text (as the official client writes it), so it is
        created with mode 0600. Returns the path written.
        """
        target = (
            Path(path).expanduser() if path is not None else (self._path or default_config_path())
        )
        data = _plain(self.model_dump(exclude_none=True))
        write_yaml_atomic(target, data)
        return target


def write_yaml_atomic(target: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as YAML to ``target`` atomically, readable by the owner only.

    A crash or a concurrent reader sees either the old file or the new one, never half.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    text = _yaml().safe_dump(dict(data), default_flow_style=False, sort_keys=True, indent=2)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _plain(value: Any) -> Any:
    """A model dump made YAML-safe, with secrets revealed (only for writing the file)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # Path, URL


def _problems(err: ValidationError) -> list[str]:
    problems = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        # Values under these sections may be tokens or registry secrets: never echo them.
        secret = bool(item["loc"]) and item["loc"][0] in ("authentication", "registry")
        shown = "" if secret else f" = {_short(item.get('input'))}"
        problems.append(f"{where}{shown} ({item['msg']})")
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reset_error(path: Path, problems: Iterable[str]) -> ConfigurationError:
    lines = "\n".join(f"  {problem}" for problem in problems)
    return ConfigurationError(
        f"The CANFAR configuration file {path} cannot be used:\n{lines}\n"
        f"Reset it with `rm {path}` and log in again with `canfar login`."
    )


# --------------------------------------------------------------------------------------
# Warnings that point at the user's line
# --------------------------------------------------------------------------------------

_SKIPPED_DIRS = tuple(
    str(Path(module.__file__).resolve().parent)
    for module in (__import__("canfar_widgets"), __import__("pydantic"))
    if module.__file__
)


def caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside canfar_widgets and pydantic.

    Our warnings are about the caller's arguments, so they should name the caller's line,
    however many of our layers (Session -> AsyncSession -> model validation) sit in between.
    Call it directly from the function that calls ``warnings.warn``.
    """
    frame = sys._getframe(2)  # skip this helper and the function that warns
    level = 2
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
        _SKIPPED_DIRS
    ):
        frame = frame.f_back
        level += 1
    return level


# --------------------------------------------------------------------------------------
# Create request
# --------------------------------------------------------------------------------------

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_NAME_RULE = (
    "name: letters, digits and '-' only, at most 63 characters, not starting or ending with '-'"
)
_IMAGE_ERROR = (
    # Verbatim from the official client (including the missing space) so users can search it.
    "invalid image container reference.must follow the format [registry/]repository/image[:tag]"
)
_INTERACTIVE_ONLY = ("desktop", "firefly")  # fixed resources, one per user, no replicas


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

    model_config = ConfigDict(defer_build=True,
        populate_by_name=True, validate_assignment=True, extra="forbid", hide_input_in_errors=True
    )

    name: str
    image: str
    cores: int | None = Field(default=None, ge=1, le=256)
    ram: int | None = Field(default=None, ge=1, le=512)
    kind: Kind = Field(
        default="headless",
        validation_alias=AliasChoices("kind", "type"),
        serialization_alias="type",
    )
    gpu: int | None = Field(
        default=None,
        ge=1,
        le=28,
        validation_alias=AliasChoices("gpu", "gpus"),
        serialization_alias="gpus",
    )
    cmd: str | None = None
    args: str | None = None
    env: dict[str, str] | None = None
    replicas: int = Field(default=1, ge=1, le=512, exclude=True)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # The server accepts [A-Za-z0-9-]+ but uses the name as a pod hostname (DNS label),
        # so a longer or dash-edged name is a 500 later rather than a 400 now.
        if not _NAME_PATTERN.match(value):
            raise ValueError(_NAME_RULE)
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
            if not isinstance(key, str) or not key:
                raise ValueError(f"env: names must be non-empty strings, got {key!r}")
            text = f"{item}"  # stringified as the official client does: f"{key}={value}"
            if "=" in key or "=" in text:
                # Sent anyway, as the official client does, but the server splits KEY=VALUE on
                # '=' and silently drops entries that do not give exactly two parts.
                log.warning("env variable %r contains '=': the server will drop it", key)
            result[key] = text
        return result

    @model_validator(mode="after")
    def _check_combination(self) -> CreateRequest:
        if (self.cmd or self.args or self.env) and self.kind != "headless":
            raise ValueError("cmd, args, env only allowed for headless sessions.")
        if self.kind in _INTERACTIVE_ONLY and self.replicas > 1:
            raise ValueError(f"multiple replicas invalid for {self.kind} sessions.")
        if self.replicas > 1 and len(self.name) + len(f"-{self.replicas}") > 63:
            raise ValueError(
                f"name: with {self.replicas} replicas the session names become "
                f"'{self.name}-<n>', which must be at most 63 characters"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        # A warning, not an error, as in the official client: desktop/firefly ignore them.
        if self.kind in _INTERACTIVE_ONLY and (self.cores or self.ram):
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


# --------------------------------------------------------------------------------------
# Tolerant parsing helpers
# --------------------------------------------------------------------------------------

_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]{0,2})\s*$")


def _split_quantity(value: Any) -> tuple[float, str] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number, suffix = float(value), ""
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None or match.group(2) not in _SUFFIXES:
            return None
        try:
            number, suffix = float(match.group(1)), match.group(2)
        except (ValueError, OverflowError):  # pragma: no cover - the regex admits floats only
            return None
    else:
        return None
    if not math.isfinite(number * _SUFFIXES[suffix]):
        return None
    return number, suffix


def parse_quantity(value: Any) -> float | None:
    """A Kubernetes quantity as a float in base units; None for ``"<none>"``, junk or absence.

    Example:
        >>> parse_quantity("250m"), parse_quantity("4Gi"), parse_quantity("0.54")
        (0.25, 4294967296.0, 0.54)
        >>> parse_quantity("<none>") is None
        True
    """
    split = _split_quantity(value)
    if split is None:
        return None
    number, suffix = split
    return number * _SUFFIXES[suffix]


def parse_gigabytes(value: Any) -> float | None:
    """Memory in decimal GB: bare numbers are GB already (as skaha reports them), units convert.

    Example:
        >>> parse_gigabytes("4.29"), parse_gigabytes("8G"), round(parse_gigabytes("4Gi"), 2)
        (4.29, 8.0, 4.29)
    """
    split = _split_quantity(value)
    if split is None:
        return None
    number, suffix = split
    if suffix == "":
        return number
    return number * _SUFFIXES[suffix] / 1e9


_TIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None if absent or unreadable.

    Accepts ``Z`` or offsets, missing seconds (``2026-08-01T17:49Z``, as Java prints :00)
    and fractions of any length.

    Example:
        >>> parse_time("2026-08-01T17:49Z")
        datetime.datetime(2026, 8, 1, 17, 49, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    match = _TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micro,
            tzinfo=timezone.utc,
        )
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            moment -= sign * offset
    except (ValueError, OverflowError):
        return None
    return moment


def _is_none_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in ("", "<none>")


# Half a UTF-16 pair: JSON may escape one ("\\ud800"), but no UTF-8 text can hold it, so a
# widget showing it could not send its state to the browser.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD (as decoding bad UTF-8 does)."""
    return _LONE_SURROGATE.sub("\ufffd", value)


# --------------------------------------------------------------------------------------
# Session record
# --------------------------------------------------------------------------------------

_STATES = {
    "pending": "Pending",
    "running": "Running",
    "terminating": "Terminating",
    "completed": "Completed",
    "succeeded": "Completed",
    "failed": "Failed",
    "error": "Failed",
}
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
        return _STATES.get(words[0].lower(), "Unknown") if words else "Unknown"

    @property
    def finished(self) -> bool:
        """True once the session has completed or failed."""
        return self.state in ("Completed", "Failed")

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


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdecimal():
        return int(value.strip())
    return None


# --------------------------------------------------------------------------------------
# Stats, context, images
# --------------------------------------------------------------------------------------


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
        if not isinstance(data, Mapping):
            return {}
        clean = {key: value for key, value in data.items() if isinstance(key, str)}
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
        if not isinstance(data, Mapping):
            return {}
        clean = {key: value for key, value in data.items() if isinstance(key, str)}
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
        if not isinstance(data, Mapping):
            return {}
        clean = {key: value for key, value in data.items() if isinstance(key, str)}
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


# --------------------------------------------------------------------------------------
# Events (kubectl custom-columns table)
# --------------------------------------------------------------------------------------


class Event(BaseModel):
    """One Kubernetes event of a session (a row of ``GET session/{id}?view=events``)."""

    type: str | None = None
    reason: str | None = None
    message: str | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None


_EVENT_COLUMNS = {
    "TYPE": "type",
    "REASON": "reason",
    "MESSAGE": "message",
    "FIRST-TIME": "first_time",
    "LAST-TIME": "last_time",
}


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "<none>") else value


def parse_events(text: Any) -> list[Event]:
    """Rows of the kubectl event table the server returns; never raises.

    Columns are located by their start offsets in the header line. Rows that do not line up
    (over-long messages) fall back to whitespace splitting: type and reason are single words,
    the two times the last two words, the message everything in between. ``<none>`` reads as
    None and a body of just ``<none>`` as no events.

    Example:
        >>> table = ("TYPE     REASON    MESSAGE                 FIRST-TIME             LAST-TIME\\n"
        ...          "Normal   Pulled    Container image pulled  2026-08-01T17:49:57Z   <none>\\n")
        >>> [(e.reason, e.message, e.last_time) for e in parse_events(table)]
        [('Pulled', 'Container image pulled', None)]
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return []
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() == "<none>":
        return []
    header, rows = lines[0], lines[1:]
    columns = [(m.group(0).upper(), m.start()) for m in re.finditer(r"\S+", header)]
    names = [name for name, _ in columns]
    if "TYPE" not in names:  # no header line: treat every line as a row
        header, rows = "", lines
        columns = [(name, -1) for name in _EVENT_COLUMNS]
    events = []
    for row in rows:
        if row.strip() == "<none>":
            continue
        cells = _aligned(row, columns) if header else None
        if cells is None:
            cells = _split_row(row, [name for name, _ in columns])
        values = {
            _EVENT_COLUMNS[name]: value for name, value in cells.items() if name in _EVENT_COLUMNS
        }
        events.append(
            Event(
                type=_cell(values.get("type")),
                reason=_cell(values.get("reason")),
                message=_cell(values.get("message")),
                first_time=parse_time(_cell(values.get("first_time"))),
                last_time=parse_time(_cell(values.get("last_time"))),
            )
        )
    return events


def _aligned(row: str, columns: list[tuple[str, int]]) -> dict[str, str] | None:
    """Cells sliced at the header offsets, or None if the row does not line up with them."""
    starts = [start for _, start in columns]
    if len(row) <= starts[-1]:
        return None
    for start in starts[1:]:
        # Each column must begin with a value right after a blank.
        if row[start - 1] != " " or row[start] == " ":
            return None
    bounds = [*starts, len(row)]
    return {name: row[bounds[i] : bounds[i + 1]] for i, (name, _) in enumerate(columns)}


def _split_row(row: str, names: list[str]) -> dict[str, str]:
    """Whitespace fallback for ragged rows: only MESSAGE may contain spaces."""
    words = row.split()
    cells: dict[str, str] = {}
    if "MESSAGE" not in names:
        return dict(zip(names, words, strict=False))
    at = names.index("MESSAGE")
    before, after = names[:at], names[at + 1 :]
    cells.update(zip(before, words[: len(before)], strict=False))
    rest = words[len(before) :]
    if len(rest) > len(after):
        tail = rest[len(rest) - len(after) :] if after else []
        cells.update(zip(after, tail, strict=False))
        cells["MESSAGE"] = " ".join(rest[: len(rest) - len(after)])
    else:
        # Too few words to hold the trailing columns: keep what is there as the message.
        cells["MESSAGE"] = " ".join(rest)
    return cells
