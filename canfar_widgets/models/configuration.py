"""The ``~/.canfar/config.yaml`` schema, read and written as the official ``canfar`` client does,
so a ``canfar login`` is picked up unchanged."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
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
from canfar_widgets.models.registry import ContainerRegistry, registry_from_environment

__all__ = [
    "ActiveSelection",
    "Configuration",
    "ConsoleSettings",
    "Credential",
    "OIDCCredential",
    "Server",
    "X509Credential",
    "default_certificate_path",
    "default_config_path",
    "write_yaml_atomic",
]

log = logging.getLogger(__name__)


def _yaml() -> Any:
    """PyYAML, imported on first use: most processes never read the config file."""
    import yaml

    return yaml


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

    model_config = ConfigDict(
        defer_build=True, extra="allow", validate_assignment=True, hide_input_in_errors=True
    )

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
            raise _reset_error(target, [_yaml_problem(err)]) from None
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
        # The field and the rule only, never the value: any value of this file may be a
        # token or a secret (a misplaced one is still a secret).
        problems.append(f"{where} ({item['msg']})")  # our rules' texts name keys, not values
    return problems


# A quoted piece of the file in a parser message (PyYAML quotes tokens, tags, aliases);
# up to 4 characters is a single character's repr such as '\t', which is kept.
_QUOTED = re.compile(r"'[^']{5,}'|\"[^\"]{5,}\"")


def _yaml_problem(err: Exception) -> str:
    """Where and what, never the text: PyYAML's own message quotes the lines around the
    error, which in this file are access tokens, refresh tokens and registry secrets.

    Example:
        >>> _yaml_problem(yaml_error)
        'invalid YAML at line 7, column 12: mapping values are not allowed here'
    """
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = _QUOTED.sub("(...)", " ".join(str(problem).split())) if problem else type(err).__name__
    return f"invalid YAML{where}: {what}"


def _reset_error(path: Path, problems: Iterable[str]) -> ConfigurationError:
    lines = "\n".join(f"  {problem}" for problem in problems)
    return ConfigurationError(
        f"The CANFAR configuration file {path} cannot be used:\n{lines}\n"
        f"Reset it with `rm {path}` and log in again with `canfar login`."
    )
