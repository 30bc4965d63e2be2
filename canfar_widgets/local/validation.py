"""Checking a create request in the server's order, with its exact messages (§2.3).

The first failing rule wins, so a request with a bad image *and* a bad type reports the image.

Example:
    >>> from canfar_widgets.local.settings import Settings
    >>> s = Settings(username="alice")
    >>> p = Params({"name": ["x"], "image": ["docker.io/x"], "type": ["nope"]})
    >>> try:
    ...     check_create(p, {}, s, username="alice", active_interactive=0)
    ... except PlatformError as err:
    ...     print(err.message)
    session image 'docker.io/x' must come from one of [images.canfar.net]
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from canfar_widgets.local.catalog import SESSION_KINDS
from canfar_widgets.local.errors import PlatformError, bad_request
from canfar_widgets.local.formats import java_double, java_int, java_split
from canfar_widgets.local.settings import Settings

__all__ = ["CreateSpec", "Params", "check_app", "check_create", "check_resources"]

_NAME = re.compile(r"[A-Za-z0-9\-]+")
# Kubernetes rejects a pod hostname that is not a DNS-1123 label; the server then fails with 500.
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_REGISTRY_HELP = ("No authentication provided for unknown or private image.  Use "
                  "x-skaha-registry-auth request header with base64Encode(username:secret).")


class Params:
    """Request parameters as a servlet sees them: name -> values, first value wins.

    Example:
        >>> Params({"env": ["A=1", "B=2"]}).get_all("env")
        ['A=1', 'B=2']
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, list[str]] | None = None) -> None:
        self._values = dict(values or {})

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))


@dataclass(frozen=True, slots=True)
class CreateSpec:
    """A validated create request."""

    kind: str
    image: str
    name: str  # lower-cased, at most 63 characters, as the server stores it
    cores: int | None
    ram: int | None
    gpus: int
    cmd: str | None
    args: str | None
    env: tuple[tuple[str, str], ...]


def check_resources(params: Params, settings: Settings) -> tuple[int | None, int | None]:
    """``cores`` and ``ram``: the integer part must be an option; one message for all failures."""
    values: list[int | None] = []
    for param, key in (("cores", "cores"), ("ram", "memoryGB")):
        raw = params.get(param)
        if raw is None:
            values.append(None)
            continue
        number = java_double(raw)
        whole: int | None = None
        if number is not None and abs(number) < 2**31:
            whole = int(number)  # Java's (int) cast truncates toward zero
        if whole is None or whole not in settings.option_list(key):
            raise bad_request(f"Invalid value for '{param}': {raw}")
        values.append(whole)
    return values[0], values[1]


def _check_registry_auth(header: str | None) -> None:
    if header is None:
        raise bad_request(_REGISTRY_HELP)
    try:
        decoded = base64.b64decode(header.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as err:
        raise bad_request(f"Illegal base64 input: {err}") from None
    parts = java_split(decoded, ":")
    if len(parts) != 2:
        raise bad_request("Invalid input.  Must be in form of username:secret")
    if not parts[0].strip():
        raise bad_request("username is required.")
    if not parts[1].strip():
        raise bad_request("secret value cannot be empty.")


def _user_env(entries: list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` entries split like the server: anything but exactly 2 parts is dropped."""
    env = []
    for entry in entries:
        parts = java_split(entry, "=")
        if len(parts) == 2 and parts[0] and "\0" not in entry:
            env.append((parts[0], parts[1]))
    return tuple(env)


def check_create(params: Params, headers: Mapping[str, str], settings: Settings, *,
                 username: str, active_interactive: int) -> CreateSpec:
    """Validate ``POST /session`` in the server's order; raise :class:`PlatformError`.

    ``headers`` maps lower-cased header names to values; ``active_interactive`` is the
    caller's (``username``) count of Pending/Running non-headless sessions.
    """
    image = params.get("image")
    if image is None:
        raise bad_request("Missing parameter 'image'")
    if not image.strip():
        raise bad_request("image is required")
    hosts = settings.allowed_hosts
    if not any(image.startswith(host) for host in hosts):
        raise bad_request(f"session image '{image}' must come from one of [{', '.join(hosts)}]")

    raw_type = params.get("type")
    kind = (raw_type or "").strip().lower() or "headless"
    if kind not in SESSION_KINDS and kind != "desktop-app":
        raise bad_request(f"Invalid session type: {raw_type}")

    cores, ram = check_resources(params, settings)

    name = params.get("name")
    if name is None or not name.strip():
        raise bad_request("Missing parameter 'name'")
    if not _NAME.fullmatch(name):
        raise bad_request("name can only contain alpha-numeric chars and '-'")

    if kind != "headless" and active_interactive >= settings.max_sessions:
        raise bad_request(f"User {username} has reached the maximum of "
                          f"{settings.max_sessions} active sessions.")

    gpus = 0
    raw_gpus = params.get("gpus")
    if raw_gpus is not None:
        value = java_int(raw_gpus)
        if value is None or value not in settings.option_list("gpus"):
            raise bad_request(f"Invalid value for 'gpus': {raw_gpus}")
        gpus = value

    if image not in {str(i.get("id")) for i in settings.images}:
        _check_registry_auth(headers.get("x-skaha-registry-auth"))

    # From here on the server has accepted the request and fails while launching it.
    if kind == "desktop-app":
        raise PlatformError(500, "unexpected exception: java.lang.IllegalStateException: "
                                 "no launch template for session type desktop-app")
    stored = name.lower()[:63]
    if not _DNS_LABEL.fullmatch(name.lower()):
        raise PlatformError(
            500, "unexpected exception: io.kubernetes.client.openapi.ApiException: Unprocessable "
                 f"Entity: spec.template.spec.hostname: Invalid value: \"{name.lower()}\": "
                 "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                 "characters or '-', and must start and end with an alphanumeric character")

    headless = kind == "headless"
    return CreateSpec(
        kind=kind, image=image, name=stored, cores=cores, ram=ram, gpus=gpus,
        cmd=params.get("cmd") if headless else None,
        args=params.get("args") if headless else None,
        env=_user_env(params.get_all("env")) if headless else (),
    )


def check_app(params: Params, settings: Settings) -> tuple[str, int | None, int | None]:
    """``POST /session/{id}/app``: image required (not host-checked), cores/ram as sessions."""
    image = params.get("image")
    if image is None:
        raise bad_request("Missing parameter 'image'")
    cores, ram = check_resources(params, settings)
    return image, cores, ram
