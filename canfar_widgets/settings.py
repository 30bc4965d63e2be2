"""Resolve where to connect and how to authenticate: ``resolve_settings(...) -> ClientSettings``.

Precedence, per setting: keyword argument > ``CANFAR_*`` environment variable >
``~/.canfar/config.yaml`` (what ``canfar login`` wrote) > built-in default
(``https://ws-uv.canfar.net/skaha/v1`` with the proxy certificate ``~/.ssl/cadcproxy.pem``).

Credentials, first match wins: ``token`` (``CANFAR_TOKEN``) > ``certificate``
(``CANFAR_CERTIFICATE``) > the config file's active login (OIDC or X.509) > anonymous.
A saved X.509 login whose certificate file is missing does not fall back to anonymous: the
client is built, but each request raises ``AuthenticationError`` saying how to log in, before
anything is sent (as ``canfar`` raises its authentication-required error). A token sent over
plain ``http://`` to a host other than this machine gives one warning per host.
Resolution is pure and eager: it reads files and validates, but opens no connection.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from canfar_widgets import __version__
from canfar_widgets.auth import BearerAuth, OIDCAuth, RegistryAuth, revealed
from canfar_widgets.errors import ConfigurationError

# The configuration and registry models load only when a config file, a registry or a saved
# login is involved: a client given its URL and credential with no config file around never
# needs them (docs/performance.md, "First call").
if TYPE_CHECKING:  # pragma: no cover
    from pydantic import SecretStr

    from canfar_widgets.models import (
        Configuration,
        ContainerRegistry,
        OIDCCredential,
        X509Credential,
    )

__all__ = ["DEFAULT_URL", "ClientSettings", "resolve_settings"]

log = logging.getLogger(__name__)

DEFAULT_URL = "https://ws-uv.canfar.net/skaha/v1/"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 32
MAX_TIMEOUT = 300.0
MAX_CONCURRENCY = 128

Mode = Literal["token", "x509", "oidc", "none"]


@dataclass(frozen=True, repr=False)
class ClientSettings:
    """Everything a client needs to talk to one server, resolved once.

    ``headers`` holds only non-secret defaults; ``auth`` adds ``Authorization`` and
    ``X-Skaha-Registry-Auth`` per request, so no secret sits in client state or in this repr.

    Example:
        >>> settings = resolve_settings(url="https://example.org/skaha/v1", token="t")
        >>> httpx.AsyncClient(base_url=settings.base_url, headers=settings.headers,
        ...                   auth=settings.auth, verify=settings.verify,
        ...                   timeout=settings.timeout)
    """

    base_url: str
    headers: dict[str, str]
    auth: httpx.Auth | None
    verify: ssl.SSLContext | bool
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    errors: Literal["ignore", "raise"] = "ignore"
    mode: str = "none"
    registry: ContainerRegistry | None = None
    certificate: Path | None = field(default=None)
    idp: str | None = field(default=None)
    # Why no request may be sent (say, the saved X.509 login's certificate file is missing):
    # the Wire raises an AuthenticationError with this text before opening any connection.
    login_problem: str | None = field(default=None)

    def __repr__(self) -> str:
        # Deliberately field by field: never the auth object's internals or the registry secret.
        user = self.registry.username if self.registry is not None else None
        return (
            f"ClientSettings(base_url={self.base_url!r}, mode={self.mode!r}, "
            f"timeout={self.timeout!r}, concurrency={self.concurrency!r}, errors={self.errors!r}, "
            f"registry_user={user!r})"
        )


_AUTH_TYPE = {"token": "RUNTIME-TOKEN", "x509": "RUNTIME-X509"}


def resolve_settings(
    *,
    url: str | None = None,
    token: str | SecretStr | None = None,
    certificate: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    concurrency: int | None = None,
    config: Configuration | str | os.PathLike[str] | None = None,
    errors: str | None = None,
    server: str | None = None,
    version: str | None = None,
    registry: ContainerRegistry | None = None,
    loglevel: int | str | None = None,
    authentication_idp: str | None = None,
    **unknown: Any,
) -> ClientSettings:
    """Resolve keywords, ``CANFAR_*`` environment and ``~/.canfar/config.yaml`` into settings.

    Args:
        url: the API base URL including the version, e.g. ``https://ws-uv.canfar.net/skaha/v1``.
        token: a bearer token (beats ``certificate``).
        certificate: a PEM file with the X.509 proxy certificate and key.
        timeout: seconds, 0 < t <= 300 (default 30).
        concurrency: parallel requests, 1..128 (default 32).
        config: a ``Configuration`` (or the path of a ``config.yaml``) to use instead of
            ``~/.canfar/config.yaml``; refreshed OIDC tokens are saved to the file it came from.
        errors: ``"ignore"`` (default, as canfar) or ``"raise"``.
        server, version: older way to give the URL: ``server + "/" + version`` (``"v1"``).
        registry: private container registry credentials.
        loglevel: level for the ``canfar_widgets`` logger (``"DEBUG"``, ``10``...).
        authentication_idp: which saved login to use instead of the active one.
        **unknown: anything else is ignored with a ``UserWarning`` naming it.

    Raises:
        ConfigurationError: bad values, an unusable config file, or a given certificate that
            is missing or unreadable.

    Example:
        >>> s = resolve_settings(url="https://example.org/skaha/v1", token="abc")
        >>> s.base_url, s.mode, s.headers["X-Skaha-Authentication-Type"]
        ('https://example.org/skaha/v1/', 'token', 'RUNTIME-TOKEN')
    """
    if unknown:
        from canfar_widgets.stacklevel import caller_stacklevel  # it imports pydantic: on first use

        names = ", ".join(sorted(unknown))
        warnings.warn(
            f"unknown keyword argument(s) ignored: {names}",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    if loglevel is not None:
        logging.getLogger("canfar_widgets").setLevel(_loglevel(loglevel))

    timeout_value = _timeout(*_keyword_or_variable(timeout, "timeout", "CANFAR_TIMEOUT"))
    concurrency_value = _concurrency(
        *_keyword_or_variable(concurrency, "concurrency", "CANFAR_CONCURRENCY")
    )
    errors_value = _errors(*_keyword_or_variable(errors, "errors", "CANFAR_ERRORS"))

    if config is not None:
        from canfar_widgets.models import Configuration

        if isinstance(config, (str, os.PathLike)):
            config = Configuration.load(config)  # a path to a config.yaml
        if not isinstance(config, Configuration):
            raise ConfigurationError(
                "config must be a Configuration or a path to a config.yaml, "
                f"not {type(config).__name__}"
            )
    if registry is not None:
        from canfar_widgets.models import ContainerRegistry

        if not isinstance(registry, ContainerRegistry):
            raise ConfigurationError(
                f"registry must be a ContainerRegistry, not {type(registry).__name__}"
            )

    token_value = _secret(token) if token is not None else _getenv("CANFAR_TOKEN")
    cert_value: Path | None = None
    if certificate is not None:
        cert_value = Path(certificate).expanduser()
    elif (env_cert := _getenv("CANFAR_CERTIFICATE")) is not None:
        cert_value = Path(env_cert).expanduser()
    if token_value and cert_value is not None:
        from canfar_widgets.stacklevel import caller_stacklevel  # it imports pydantic: on first use

        warnings.warn(
            "both a token and a certificate were given; the token is used and the certificate ignored",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
        cert_value = None

    url_value = url if url is not None else _getenv("CANFAR_URL")
    runtime_credential = bool(token_value) or cert_value is not None
    # The file is only needed for what the keywords and environment left open.
    needs_file = config is None and (
        url_value is None or not runtime_credential or registry is None
    )
    if needs_file and url_value is not None and runtime_credential and _nothing_saved():
        # What loading would give here: the defaults, whose only use with a URL and a
        # credential given is the registry (from the environment), and there is none.
        needs_file = False
    configuration = config
    if configuration is None and needs_file:
        from canfar_widgets.models import Configuration

        configuration = Configuration.load()

    base_url = _base_url(url_value, server, version, configuration)
    registry_value = (
        registry if registry is not None else (configuration.registry if configuration else None)
    )
    if registry_value is not None and registry_value.header_value() is None:
        registry_value = None  # a url-only registry adds no header

    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": f"canfar-widgets/{__version__}",
    }
    auth: httpx.Auth | None
    verify: ssl.SSLContext | bool = True
    idp: str | None = None
    certificate_path: Path | None = None
    login_problem: str | None = None

    if token_value:
        mode: Mode = "token"
        headers["X-Skaha-Authentication-Type"] = _AUTH_TYPE["token"]
        auth = BearerAuth(token_value, registry_value)
    elif cert_value is not None:
        mode = "x509"
        headers["X-Skaha-Authentication-Type"] = _AUTH_TYPE["x509"]
        verify = _ssl_context(cert_value, explicit=True)
        certificate_path = cert_value
        auth = None  # the certificate travels in the TLS context; registry header added below
    else:
        assert configuration is not None  # loaded above: no runtime credential
        idp = authentication_idp or configuration.active.authentication
        record = configuration.active_credential(idp)
        if authentication_idp is not None and record is None:
            raise ConfigurationError(
                f"no saved login named {authentication_idp!r} in the CANFAR configuration "
                f"(known: {', '.join(configuration.authentication) or 'none'})"
            )
        mode, auth, verify, certificate_path, login_problem = _saved_login(
            record, idp, configuration, registry_value
        )
        if mode == "oidc":
            headers["X-Skaha-Authentication-Type"] = "OIDC"
        elif mode == "x509":
            headers["X-Skaha-Authentication-Type"] = "X509"

    if auth is None and registry_value is not None:
        auth = RegistryAuth(registry_value)
    if mode in ("token", "oidc"):
        _warn_plain_http(base_url)

    return ClientSettings(
        base_url=base_url,
        headers=headers,
        auth=auth,
        verify=verify,
        timeout=timeout_value,
        concurrency=concurrency_value,
        errors=errors_value,
        mode=mode,
        registry=registry_value,
        certificate=certificate_path,
        idp=idp,
        login_problem=login_problem,
    )


# --------------------------------------------------------------------------------------
# pieces
# --------------------------------------------------------------------------------------


# The environment variables a default configuration takes a registry login from
# (canfar_widgets.models.registry.registry_from_environment).
_REGISTRY_VARIABLES = frozenset(
    {
        "CANFAR_REGISTRY__URL",
        "CANFAR_REGISTRY__USERNAME",
        "CANFAR_REGISTRY__SECRET",
        "SKAHA_REGISTRY_USERNAME",
        "SKAHA_REGISTRY_SECRET",
    }
)


def _nothing_saved() -> bool:
    """No ``~/.canfar/config.yaml`` and no registry variable: loading would give defaults.

    Conservative: any doubt (an unreadable home, a registry variable set even to blanks)
    answers False, and the configuration is loaded as before.
    """
    if any(value and name.upper() in _REGISTRY_VARIABLES for name, value in os.environ.items()):
        return False
    try:
        # Where Configuration.load() looks (models.configuration.default_config_path).
        return not (Path.home() / ".canfar" / "config.yaml").exists()
    except (OSError, RuntimeError):  # RuntimeError: no home directory could be determined
        return False


def _saved_login(
    record: X509Credential | OIDCCredential | None,
    idp: str,
    configuration: Configuration,
    registry: ContainerRegistry | None,
) -> tuple[Mode, httpx.Auth | None, ssl.SSLContext | bool, Path | None, str | None]:
    from canfar_widgets.models import OIDCCredential, X509Credential

    if isinstance(record, OIDCCredential):
        if record.expired() and not record.refreshable:
            raise ConfigurationError(
                f"the saved OIDC login {idp!r} has expired and cannot be refreshed; "
                "run `canfar login` again"
            )
        auth = OIDCAuth(record, idp=idp, path=configuration.path, registry=registry)
        return "oidc", auth, True, None, None
    if isinstance(record, X509Credential) and record.path is not None:
        path = Path(record.path).expanduser()
        if path.is_file():
            return "x509", None, _ssl_context(path, explicit=False), path, None
        # No certificate (never logged in, or it was deleted). Building the client still
        # works (a widget may be created before logging in), but every request is refused
        # before it is sent, as canfar does: anonymous requests would only get empty
        # results and a server error that does not say how to log in.
        problem = (
            f"Not logged in: the saved X.509 login {idp!r} uses the certificate {path}, which "
            "does not exist. Log in with `canfar auth login` (or `canfar login`) to get one, "
            "or pass token=... or certificate=... to the session."
        )
        return "none", None, True, None, problem
    return "none", None, True, None, None


_warned_plain_http: set[str] = set()


def _warn_plain_http(base_url: str) -> None:
    """Warn once per host when a bearer token would travel unencrypted off this machine."""
    parsed = httpx.URL(base_url)
    host = parsed.host
    if parsed.scheme != "http" or _loopback(host) or host in _warned_plain_http:
        return
    _warned_plain_http.add(host)
    from canfar_widgets.stacklevel import caller_stacklevel  # it imports pydantic: on first use

    warnings.warn(
        f"the token would be sent over plain http:// to {host}, where anyone on the network "
        "can read it; use an https:// URL",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ssl_context(path: Path, *, explicit: bool) -> ssl.SSLContext:
    """A TLS (>= 1.2) context presenting the client certificate in ``path`` (cert + key)."""
    if not path.is_file():
        from canfar_widgets.models import default_certificate_path

        hint = " (run `canfar login` to get one)" if path == default_certificate_path() else ""
        raise ConfigurationError(f"certificate file {path} does not exist{hint}")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(path))
    except (ssl.SSLError, OSError, ValueError) as err:
        source = "certificate=" if explicit else "the saved X.509 login"
        reason = (
            getattr(err, "reason", None) or getattr(err, "strerror", None) or type(err).__name__
        )
        raise ConfigurationError(
            f"cannot use {path} as a client certificate ({source}): {reason}; "
            "it must be a PEM file holding the certificate and its private key"
        ) from None
    return context


def _base_url(
    url: str | None,
    server: str | None,
    version: str | None,
    configuration: Configuration | None,
) -> str:
    if url is not None:
        text = str(url).strip()
    elif server is not None:
        text = f"{str(server).strip().rstrip('/')}/{(version or 'v1').strip('/')}"
    elif configuration is not None:
        active = configuration.active_server()
        if version is not None:
            active = active.model_copy(update={"version": version})
        text = active.base_url
    else:  # pragma: no cover - resolve_settings always loads a configuration here
        text = DEFAULT_URL
    parsed = httpx.URL(text)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"url must be an http(s) URL such as {DEFAULT_URL!r}, got {text!r}"
        )
    if parsed.query or parsed.fragment:
        raise ConfigurationError(f"url must not contain a query or fragment, got {text!r}")
    # httpx joins relative paths onto base_url only below a trailing slash.
    return text if text.endswith("/") else text + "/"


def _keyword_or_variable(value: Any, keyword: str, variable: str) -> tuple[Any, str]:
    """The keyword's value if given, else the environment variable's (keywords > env), with
    the name a bad value is reported under."""
    if value is None and (env := _getenv(variable)) is not None:
        return env, variable
    return value, keyword


def _timeout(value: Any, source: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{source} must be a number of seconds, got {value!r}") from None
    if not (0 < number <= MAX_TIMEOUT):  # also rejects NaN
        raise ConfigurationError(
            f"{source} must be > 0 and <= {MAX_TIMEOUT:g} seconds, got {value!r}"
        )
    return number


def _concurrency(value: Any, source: str) -> int:
    if value is None:
        return DEFAULT_CONCURRENCY
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdecimal():
        number = int(value.strip())
    if number is None:
        raise ConfigurationError(f"{source} must be a whole number, got {value!r}")
    if not (1 <= number <= MAX_CONCURRENCY):
        raise ConfigurationError(f"{source} must be between 1 and {MAX_CONCURRENCY}, got {value!r}")
    return number


def _errors(value: Any, source: str) -> Literal["ignore", "raise"]:
    if source == "CANFAR_ERRORS":
        value = value.lower()  # the variable's case does not matter; the keyword's does
    if value is None:
        return "ignore"
    if value == "ignore":
        return "ignore"
    if value == "raise":
        return "raise"
    raise ConfigurationError(f"{source} must be 'ignore' or 'raise', got {value!r}")


def _loglevel(value: int | str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        level = logging.getLevelName(value.strip().upper())
        if isinstance(level, int):
            return level
    raise ConfigurationError(
        f"loglevel must be a logging level such as 'DEBUG', 'INFO' or 20, got {value!r}"
    )


def _secret(value: str | SecretStr) -> str | None:
    return str(revealed(value)).strip() or None


def _getenv(name: str) -> str | None:
    """``CANFAR_*`` values, empty meaning unset (canfar reads them case-insensitively too)."""
    value = os.environ.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in os.environ.items() if k.lower() == wanted), None)
    if value is None or not value.strip():
        return None
    return value.strip()
