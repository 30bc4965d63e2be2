"""Checking a create request in the server's order, with its exact messages
(docs/local-platform.md, "What is faithful" and "Fidelity").

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

import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

from canfar_widgets.local.catalog import SESSION_KINDS
from canfar_widgets.local.errors import PlatformError, bad_request
from canfar_widgets.local.formats import (
    JavaError,
    cadc_base64_decode,
    has_text,
    java_double,
    java_int,
    java_int_value,
    java_replacement,
    java_split,
    java_trim,
)
from canfar_widgets.local.launch import container_spec
from canfar_widgets.local.settings import Settings

__all__ = [
    "CreateSpec",
    "Params",
    "check_app",
    "check_create",
    "check_label",
    "check_resources",
    "launch_failure",
    "unexpected",
]

_NAME = re.compile(r"[A-Za-z0-9\-]+")
# Kubernetes rejects a pod hostname that is not a DNS-1123 label (the server then fails).
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# SessionLabels.KUBERNETES_LABEL_VALUE
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_REGISTRY_HELP = (
    "No authentication provided for unknown or private image.  Use "
    "x-skaha-registry-auth request header with base64Encode(username:secret)."
)


def _fold(name: str) -> str:
    # CaseInsensitiveStringComparator compares char by char (no 'ß' -> 'SS' expansion)
    return "".join(c.upper().lower() if len(c.upper()) == 1 else c.lower() for c in name)


class Params:
    """Request parameters as cadc-rest's SyncInput keeps them: case-insensitive names.

    SyncInput stores parameters in a ``TreeMap(CaseInsensitiveStringComparator)``, so
    ``NAME=`` is ``name=`` and ``?VIEW=stats`` is ``?view=stats``; the values of names that
    differ only in case are merged in arrival order, and the first value wins.

    Example:
        >>> p = Params({"env": ["A=1"], "ENV": ["B=2"], "Name": ["x"]})
        >>> p.get_all("env"), p.get("name")
        (['A=1', 'B=2'], 'x')
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, list[str]] | None = None) -> None:
        self._values: dict[str, list[str]] = {}
        for name, found in (values or {}).items():
            self._values.setdefault(_fold(name), []).extend(found)

    def get(self, name: str) -> str | None:
        values = self._values.get(_fold(name))
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(_fold(name), []))


def unexpected(error: JavaError | str) -> PlatformError:
    """cadc-rest's 500 for an exception no action handled: ``unexpected exception: <toString>``.

    RestServlet writes it without a trailing newline.
    """
    return PlatformError(500, f"unexpected exception: {error}", newline=False)


def _java(error: JavaError) -> PlatformError:
    """A Java exception as cadc-rest answers it: IllegalArgumentException 400, others 500."""
    return bad_request(error.message) if error.illegal_argument else unexpected(error)


def check_label(label: str, value: str) -> str:
    """``SessionLabels.validateLabelValue``: the 400 a malformed id gets on the server.

    Example:
        >>> try:
        ...     check_label("canfar.net/id", "bad!id")
        ... except PlatformError as err:
        ...     print(err.status, err.message)
        400 canfar.net/id label value must match Kubernetes label value syntax
    """
    if not has_text(value):
        raise bad_request(f"{label} label value cannot be blank")
    if len(value) > 63:
        raise bad_request(f"{label} label value exceeds 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        raise bad_request(f"{label} label value must match Kubernetes label value syntax")
    return value


def _truncated_label(value: str) -> str:
    """``SessionLabels.truncateLabelValue``: 63 characters, then cut until it is a label value."""
    candidate = value[:63]
    while candidate and not _LABEL_VALUE.fullmatch(candidate):
        candidate = candidate[:-1]
    return candidate


def launch_failure(job_name: str) -> PlatformError:
    """The server's 500 when ``kubectl create`` refused the Job.

    ``CommandExecutioner.execute`` returns kubectl's stderr instead of failing, so the error
    only shows when ``SessionDAO.getJob`` then reads the Job that was never created.
    """
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'jobs.batch "{job_name}" not found',
            "reason": "NotFound",
            "details": {"name": job_name, "group": "batch", "kind": "jobs"},
            "code": 404,
        },
        separators=(",", ":"),
    )
    return unexpected(
        JavaError(
            "io.kubernetes.client.openapi.ApiException",
            f"Message: Not Found\nHTTP response code: 404\nHTTP response body: {body}\n"
            "HTTP response headers: {content-type=[application/json]}",
        )
    )


@dataclass(frozen=True, slots=True)
class CreateSpec:
    """A validated create request, as the server would launch it."""

    kind: str
    image: str  # as the pod shows it (after the template fill: a backslash is dropped)
    name: str  # lower-cased and cut to a label value (at most 63 characters), as stored
    cores: float | None  # requested as given: 1.5 is 1500m (only the integer part is checked)
    ram: float | None  # GiB, as given
    gpus: int  # granted GPUs: 0, GPU scheduling is off here (the request is still checked)
    cmd: str | None
    args: str | None
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...] | None = None  # headless: the container's command + args


def _resource(params: Params, param: str, options: list[int]) -> float | None:
    raw = params.get(param)
    if not has_text(raw):  # StringUtil.hasText: an empty cores= is no cores at all
        return None
    assert raw is not None
    number = java_double(raw)
    # Only the integer part is checked against the options; the request keeps the fraction.
    if number is None or java_int_value(number) not in options:
        raise bad_request(f"Invalid value for '{param}': {raw}")
    return number


def check_resources(params: Params, settings: Settings) -> tuple[float | None, float | None]:
    """``cores`` and ``ram`` (``ResourceSpecification``): one message for every failure."""
    cores = _resource(params, "cores", list(settings.option_list("cores")))
    ram = _resource(params, "ram", list(settings.option_list("memoryGB")))
    return cores, ram


def _check_registry_auth(header: str | None) -> None:
    """``SkahaAction.getRegistryAuth`` + ``ImageRepositoryAuth.fromEncoded``."""
    if not has_text(header):  # an empty header counts as absent
        raise bad_request(_REGISTRY_HELP)
    assert header is not None
    try:
        decoded = cadc_base64_decode(header).decode("utf-8", "replace")
    except JavaError as err:
        raise _java(err) from None
    parts = java_split(decoded, ":")
    if len(parts) != 2:
        raise bad_request("Invalid input.  Must be in form of username:secret")
    if not has_text(java_trim(parts[0])):
        raise bad_request("username is required.")
    if not java_trim(parts[1]):
        raise bad_request("secret value cannot be empty.")


def _job_name(kind: str, username: str) -> str:
    # K8SUtil.getJobName, with a fresh id: the server had drawn one that was never used
    user = re.sub(r"[^0-9a-zA-Z-]", "-", username)
    session_id = secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(7)
    )
    return f"skaha-{kind}-{user}-{session_id}".lower()


def _valid_env_name(name: str) -> bool:
    # Kubernetes >= 1.32 (relaxed validation): non-empty printable ASCII without '='
    return bool(name) and all(" " <= c <= "~" for c in name) and "=" not in name


def check_create(
    params: Params,
    headers: Mapping[str, str],
    settings: Settings,
    *,
    username: str,
    active_interactive: int,
) -> CreateSpec:
    """Validate ``POST /session`` in the server's order; raise :class:`PlatformError`.

    ``headers`` maps lower-cased header names to values; ``active_interactive`` is the
    caller's (``username``) count of Pending/Running non-headless sessions. After the
    checks, the launch is emulated step by step (template fill, YAML, labels, what
    Kubernetes refuses), so what the server refuses at launch is refused here too.
    """
    image = params.get("image")
    if image is None:
        raise bad_request("Missing parameter 'image'")
    if not has_text(image):
        raise bad_request("image is required")
    hosts = settings.allowed_hosts
    if not any(image.startswith(host) for host in hosts):
        raise bad_request(f"session image '{image}' must come from one of [{', '.join(hosts)}]")

    raw_type = params.get("type")
    requested = raw_type if has_text(raw_type) else "headless"
    assert requested is not None
    kind = java_trim(requested).lower()
    if kind not in SESSION_KINDS and kind != "desktop-app":
        raise bad_request(f"Invalid session type: {requested}")

    cores, ram = check_resources(params, settings)

    name = params.get("name")
    if not has_text(name):
        raise bad_request("Missing parameter 'name'")
    assert name is not None
    if not _NAME.fullmatch(name):
        raise bad_request("name can only contain alpha-numeric chars and '-'")

    if kind != "headless" and active_interactive >= settings.max_sessions:
        raise bad_request(
            f"User {username} has reached the maximum of {settings.max_sessions} active sessions."
        )

    raw_gpus = params.get("gpus")
    if has_text(raw_gpus):
        assert raw_gpus is not None
        value = java_int(raw_gpus)
        if value is None or value not in settings.option_list("gpus"):
            raise bad_request(f"Invalid value for 'gpus': {raw_gpus}")

    if image not in {str(i.get("id")) for i in settings.images}:
        _check_registry_auth(headers.get("x-skaha-registry-auth"))

    # ---- From here on the server has accepted the request and fails while launching it.
    if kind == "desktop-app":  # SessionType.DESKTOP_APP.name() is desktop_app: no such file
        raise unexpected("java.nio.file.NoSuchFileException: /config/launch-desktop_app.yaml")
    headless = kind == "headless"
    cmd = params.get("cmd")
    args = params.get("args")
    try:
        if headless:  # the image bundle: cmd/args/env go through replaceAll, then YAML
            spec = container_spec(image, cmd, args, params.get_all("env"))
            launched_image, argv, env = spec.image, spec.argv, spec.env
        else:  # cmd/args/env are not used; the image fills ${software.imageid}
            launched_image = java_replacement(image, "${software.imageid}")
            argv, env = None, ()
    except JavaError as err:
        raise _java(err) from None
    label = _truncated_label(name.lower())
    check_label("canfar.net/name", label)
    # kubectl create fails (quietly) on what the API server rejects; then getJob fails.
    if not _DNS_LABEL.fullmatch(name.lower()) or not all(_valid_env_name(k) for k, _ in env):
        raise launch_failure(_job_name(kind, username))

    return CreateSpec(
        kind=kind,
        image=launched_image,
        name=label,
        cores=cores,
        ram=ram,
        gpus=0,
        cmd=cmd if headless else None,
        args=args if headless else None,
        env=env,
        argv=argv,
    )


def check_app(params: Params, settings: Settings) -> tuple[str, float | None, float | None]:
    """``POST /session/{id}/app``: image required (not host-checked), cores/ram as sessions."""
    image = params.get("image")
    if image is None:
        raise bad_request("Missing parameter 'image'")
    cores, ram = check_resources(params, settings)
    return image, cores, ram
