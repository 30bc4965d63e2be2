"""LaunchForm: launch a CANFAR session from a notebook, with the same rules the server has.

The form is built from the platform: kinds, the images of each kind (``GET image``) and the
resource choices (``GET context``). Every field is a synced trait, so the launch spec lives
in the notebook and can be set from Python. Bad names and out-of-range resources are
reported next to their field before any request: instantly in the browser
(``js/lib/launch_rules.js``) and again here, with the same messages and then through
``CreateRequest``, before ``create`` is called.

Private-registry credentials never enter widget state: the browser sends them only inside
the launch message, this class hands them to that one ``create`` call and drops them.

Example:
    >>> from canfar_widgets import LaunchForm
    >>> form = LaunchForm(kind="headless", image="images.canfar.net/skaha/terminal:1.1.2",
    ...                   cmd="echo", args="hello")
    >>> form                      # fill in, press Launch; or from Python:
    >>> ids = form.launch().result()
    >>> print(form.code())        # the equivalent session.create(...) call
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import re
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import traitlets
from pydantic import ValidationError

from canfar_widgets.models import ContainerRegistry, CreateRequest
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, log

__all__ = [
    "KINDS",
    "NAME_PATTERN",
    "LaunchForm",
    "create_kwargs",
    "default_name",
    "parse_env",
    "python_code",
    "validate_spec",
]

# Keep in step with js/lib/launch_rules.js (same rules, same messages).
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
KINDS = ("notebook", "desktop", "carta", "contributed", "firefly", "headless")
# Launch templates of these kinds hard-code resources; cores/ram would be ignored.
PLATFORM_SIZED_KINDS = ("desktop", "firefly")
HARD_LIMITS = {"cores": (1, 256), "ram": (1, 512), "gpus": (1, 28), "replicas": (1, 512)}
LABELS = {
    "name": "Name", "kind": "Kind", "image": "Image", "resources": "Resources",
    "cores": "Cores", "ram": "RAM (GB)", "gpus": "GPUs", "cmd": "Command",
    "args": "Arguments", "env": "Environment", "replicas": "Replicas",
    "registry": "Registry", "form": "Launch",
}  # fmt: skip

_NAME_RE = re.compile(NAME_PATTERN)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGITS_RE = re.compile(r"^\d+$")
# CreateRequest field -> form field.
_MODEL_FIELDS = {
    "name": "name", "image": "image", "kind": "kind", "type": "kind", "cores": "cores",
    "ram": "ram", "gpu": "gpus", "gpus": "gpus", "cmd": "cmd", "args": "args", "env": "env",
    "replicas": "replicas",
}  # fmt: skip

# Default names: astronomers (several Canadian), plus a short random suffix.
SCIENTISTS = (
    "leavitt", "hogg", "payne", "rubin", "cannon", "hubble", "herschel", "kepler", "shapley",
    "tinsley", "burbidge", "zwicky", "oort", "sagan", "plaskett", "beals", "vandenberg",
    "bolton", "kuiper", "messier", "hale", "jansky", "penzias", "lemaitre", "chandra",
)  # fmt: skip
_SUFFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)


def default_name(rng: random.Random | None = None) -> str:
    """A fresh valid session name: an astronomer's surname and a 4-character suffix.

    Example:
        >>> default_name(random.Random(1))
        'hogg-b9ed'
    """
    rng = rng or random.Random()
    suffix = "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(4))
    return f"{rng.choice(SCIENTISTS)}-{suffix}"


# -- rules (mirrors of js/lib/launch_rules.js) ------------------------------------------------


def check_name(name: Any) -> str:
    """The message for a bad session name, or ``""``.

    Example:
        >>> check_name("my-job")
        ''
        >>> check_name("-bad")[:40]
        "Name must be 1-63 letters, digits or '-'"
    """
    value = str(name if name is not None else "").strip()
    if not value:
        return "Name is required."
    if _NAME_RE.match(value):
        return ""
    return (
        "Name must be 1-63 letters, digits or '-', starting and ending with a letter or digit "
        f"(rule {NAME_PATTERN})."
    )


def describe_options(options: list[int]) -> str:
    """``[1, 2, 3, 4, 8]`` -> ``"1-4, 8"``."""
    values = sorted(set(options))
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j > i + 1:
            parts.append(f"{values[i]}-{values[j]}")
        elif j == i + 1:
            parts.append(f"{values[i]}, {values[j]}")
        else:
            parts.append(f"{values[i]}")
        i = j + 1
    return ", ".join(parts)


class _NotWhole:
    """Marker for a value that is present but not a whole number."""


_NOT_WHOLE = _NotWhole()


def _whole(value: Any) -> int | _NotWhole | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return _NOT_WHOLE
    if isinstance(value, int):
        return value if value >= 0 else _NOT_WHOLE
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else _NOT_WHOLE
    text = str(value).strip()
    if not text:
        return None
    return int(text) if _DIGITS_RE.match(text) else _NOT_WHOLE


def _check_resource(label: str, value: Any, options: list[int] | None, hard: tuple[int, int]) -> str:
    n = _whole(value)
    if n is None:
        return f"{label} is required."
    if isinstance(n, _NotWhole):
        return f"{label} must be a whole number."
    if options:
        if n not in options:
            return f"{label} must be one of {describe_options(options)}."
    elif not hard[0] <= n <= hard[1]:
        return f"{label} must be between {hard[0]} and {hard[1]}."
    return ""


def parse_env(text: Any) -> tuple[dict[str, str], str]:
    """``"KEY=VALUE"`` lines -> ``(env, error)``; blank lines and ``#`` comments are skipped.

    The platform splits each entry on ``=`` and silently drops entries without exactly
    one, so a value containing ``=`` is refused here rather than lost there.

    Example:
        >>> parse_env("A=1\\n# comment\\nB = two")
        ({'A': '1', 'B': 'two'}, '')
        >>> parse_env("A=b=c")[1]
        "Environment line 1: the value cannot contain '=' (the platform splits on it)."
    """
    env: dict[str, str] = {}
    for number, raw in enumerate(str(text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            return env, f"Environment line {number}: expected KEY=VALUE."
        if not _ENV_KEY_RE.match(key):
            return env, f"Environment line {number}: {key} is not a valid variable name."
        if "=" in value:
            return env, (
                f"Environment line {number}: the value cannot contain '=' (the platform splits on it)."
            )
        env[key] = value
    return env, ""


def check_image(image: Any) -> str:
    """The message for a malformed image reference, or ``""``."""
    value = str(image or "").strip()
    if not value:
        return "Image is required."
    parts = value.split("/")
    if not 2 <= len(parts) <= 3 or any(not p for p in parts) or re.search(r"\s", value):
        return (
            "Image must look like [registry/]project/name[:tag], "
            "e.g. images.canfar.net/skaha/astroml:latest."
        )
    return ""


def _options(limits: Mapping[str, Any], key: str) -> list[int] | None:
    section = limits.get(key) if isinstance(limits, Mapping) else None
    options = section.get("options") if isinstance(section, Mapping) else None
    return [int(o) for o in options] if options else None


def validate_spec(spec: Mapping[str, Any], limits: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every problem in a launch spec as ``{field: message}``; ``{}`` when it can be sent.

    ``spec`` has the form's fields (``name kind image resources cores ram gpus cmd args env
    replicas``); ``limits`` is ``{"cores": {"options": [...]}, "ram": ..., "gpus": ...}``
    from the context endpoint (without it the client's hard limits apply).

    Example:
        >>> validate_spec({"name": "-x", "kind": "notebook", "image": "skaha/astroml"})
        {'name': "Name must be 1-63 letters, digits or '-', starting and ending with a letter or digit (rule ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$)."}
    """
    limits = limits or {}
    errors: dict[str, str] = {}

    def put(field: str, message: str) -> None:
        if message:
            errors[field] = message

    kind = spec.get("kind")
    put("name", check_name(spec.get("name")))
    if kind not in KINDS:
        put("kind", f"Kind must be one of {', '.join(KINDS)}.")
    put("image", check_image(spec.get("image")))
    if spec.get("resources") == "fixed" and kind not in PLATFORM_SIZED_KINDS:
        put("cores", _check_resource("Cores", spec.get("cores"), _options(limits, "cores"), HARD_LIMITS["cores"]))
        put("ram", _check_resource("RAM (GB)", spec.get("ram"), _options(limits, "ram"), HARD_LIMITS["ram"]))
    gpus = _whole(spec.get("gpus"))
    if isinstance(gpus, _NotWhole):
        put("gpus", "GPUs must be a whole number.")
    elif gpus:
        put("gpus", _check_resource("GPUs", gpus, _options(limits, "gpus"), HARD_LIMITS["gpus"]))
    if kind == "headless":
        replicas = _whole(spec.get("replicas"))
        name = str(spec.get("name") or "").strip()
        if "name" not in errors and isinstance(replicas, int) and replicas > 1 and len(name) + len(f"-{replicas}") > 63:
            put("name", f"Name is too long for {replicas} replicas: each session is named {name}-<n>, at most 63 characters.")
        if re.search(r"\s", str(spec.get("cmd") or "").strip()):
            put("cmd", "Command is one program without spaces; put its arguments in Arguments.")
        put("env", parse_env(spec.get("env"))[1])
        put("replicas", _check_resource("Replicas", spec.get("replicas"), None, HARD_LIMITS["replicas"]))
    return errors


def create_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``session.create()`` for a valid spec, in a stable order.

    Fields that do not apply are left out: cores/ram for flexible resources (the platform
    then shares up to its default limits), headless options for interactive kinds, and
    ``gpu`` when none is asked for.

    Example:
        >>> create_kwargs({"name": "a", "image": "skaha/x", "kind": "notebook",
        ...                "resources": "flexible", "cmd": "ignored"})
        {'name': 'a', 'image': 'skaha/x', 'kind': 'notebook'}
    """
    kind = spec.get("kind")
    kw: dict[str, Any] = {
        "name": str(spec.get("name") or "").strip(),
        "image": str(spec.get("image") or "").strip(),
        "kind": kind,
    }
    if spec.get("resources") == "fixed" and kind not in PLATFORM_SIZED_KINDS:
        kw["cores"] = _whole(spec.get("cores"))
        kw["ram"] = _whole(spec.get("ram"))
    gpus = _whole(spec.get("gpus"))
    if isinstance(gpus, int) and gpus:
        kw["gpu"] = gpus
    if kind == "headless":
        cmd = str(spec.get("cmd") or "").strip()
        args = str(spec.get("args") or "").strip()
        env, _ = parse_env(spec.get("env"))
        if cmd:
            kw["cmd"] = cmd
        if args:
            kw["args"] = args
        if env:
            kw["env"] = env
        replicas = _whole(spec.get("replicas"))
        if isinstance(replicas, int) and replicas > 1:
            kw["replicas"] = replicas
    return kw


def _py_literal(value: Any) -> str:
    # JSON strings are valid Python literals, and match what the browser's JSON.stringify
    # produces, so the code shown in the form and form.code() are the same text.
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    items = ", ".join(
        f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()
    )
    return "{" + items + "}"


def python_code(spec: Mapping[str, Any], registry: bool = False) -> str:
    """The Python that makes the same launch (no secrets: a registry reads the environment).

    Example:
        >>> print(python_code({"name": "a", "image": "skaha/x", "kind": "notebook"}))
        from canfar_widgets import Session
        <BLANKLINE>
        session = Session()
        ids = session.create(
            name="a",
            image="skaha/x",
            kind="notebook",
        )
        <BLANKLINE>
    """
    lines: list[str] = []
    if registry:
        lines += [
            "from canfar_widgets import ContainerRegistry, Session",
            "",
            "# Reads CANFAR_REGISTRY__USERNAME and CANFAR_REGISTRY__SECRET from the environment.",
            "registry = ContainerRegistry()",
        ]
    else:
        lines.append("from canfar_widgets import Session")
    lines += ["", "session = Session()", "ids = session.create("]
    lines += [f"    {key}={_py_literal(value)}," for key, value in create_kwargs(spec).items()]
    if registry:
        lines.append("    registry=registry,")
    lines.append(")")
    return "\n".join(lines) + "\n"


def limits_from_context(context: Any) -> dict[str, Any]:
    """The form's ``limits`` trait from a ``Context``: options and defaults per resource.

    GPU option 0 is dropped (no GPU is "leave GPUs empty"; the server rejects ``gpus=0``).
    """

    def section(options: Any) -> dict[str, Any]:
        if options is None:
            return {}
        values = sorted({int(o) for o in (getattr(options, "options", None) or []) if float(o).is_integer()})
        out: dict[str, Any] = {"options": values}
        for key in ("default", "defaultRequest", "defaultLimit", "defaultHeadless"):
            value = getattr(options, key, None)
            if value is not None:
                out[key] = value
        return out

    gpus = section(getattr(context, "gpus", None))
    if gpus.get("options"):
        gpus["options"] = [o for o in gpus["options"] if o > 0]
    return {
        "cores": section(getattr(context, "cores", None)),
        "ram": section(getattr(context, "memoryGB", None)),
        "gpus": gpus,
    }


def _model_errors(err: ValidationError) -> dict[str, str]:
    """``CreateRequest`` validation errors -> ``{form field: message}`` (never echoing input)."""
    out: dict[str, str] = {}
    for item in err.errors(include_input=False, include_url=False):
        loc = item.get("loc") or ()
        field = _MODEL_FIELDS.get(str(loc[0])) if loc else None
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if field is None:  # a model-level rule: it usually names its field first ("name: ...")
            head = message.split(":", 1)[0].strip()
            field = _MODEL_FIELDS.get(head, "form")
        label = LABELS.get(field, field)
        out.setdefault(field, f"{label}: {message}")
    return out


class LaunchForm(CanfarWidget):
    """A form that launches CANFAR sessions, validated before anything is sent.

    Fields (synced traits, settable from Python): ``name``, ``kind``, ``image``,
    ``resources`` (``"flexible"`` shares up to the platform's default limits; ``"fixed"``
    sends ``cores`` and ``ram``), ``cores``, ``ram``, ``gpus`` (0 = none), and for headless
    jobs ``cmd``, ``args``, ``env`` (``KEY=VALUE`` per line) and ``replicas``.

    Outputs: ``last_launched`` (the ids of the last launch), ``field_errors``
    (``{field: message}``), ``images`` (``{kind: [image ids]}``), ``limits`` (from the
    context endpoint), plus ``status``/``error``/``busy`` from :class:`CanfarWidget`.

    Example:
        >>> form = LaunchForm(session, kind="headless", image="skaha/terminal:1.1.2",
        ...                   cmd="echo", args="hello", replicas=3)
        >>> form.launch().result()
        ['q2w8e4r6', 'k3x9ab2q', 'm1n2b3v4']
        >>> form.last_launched
        ['q2w8e4r6', 'k3x9ab2q', 'm1n2b3v4']
    """

    _entry = "launch_form"

    # -- inputs (front-end owned) --
    name = traitlets.Unicode("").tag(sync=True)
    kind = traitlets.Unicode("notebook").tag(sync=True)
    image = traitlets.Unicode("").tag(sync=True)
    resources = traitlets.Unicode("flexible").tag(sync=True)
    cores = traitlets.Int(None, allow_none=True).tag(sync=True)
    ram = traitlets.Int(None, allow_none=True).tag(sync=True)
    gpus = traitlets.Int(None, allow_none=True).tag(sync=True)
    cmd = traitlets.Unicode("").tag(sync=True)
    args = traitlets.Unicode("").tag(sync=True)
    env = traitlets.Unicode("").tag(sync=True)
    replicas = traitlets.Int(1, allow_none=True).tag(sync=True)

    # -- outputs (written on the runner thread) --
    kinds = traitlets.List(traitlets.Unicode(), default_value=list(KINDS)).tag(sync=True)
    images = traitlets.Dict().tag(sync=True)
    """``{kind: [image id, ...]}``, filled as kinds are chosen."""
    limits = traitlets.Dict().tag(sync=True)
    """``{"cores"|"ram"|"gpus": {"options": [...], "default": n, ...}}`` from the context."""
    load_limits = traitlets.Dict().tag(sync=True)
    """``{"cores": n, "ram": gb}``: the largest session the platform can place (from stats)."""
    field_errors = traitlets.Dict().tag(sync=True)
    last_launched = traitlets.List(traitlets.Unicode()).tag(sync=True)
    done_nonce = traitlets.Unicode("").tag(sync=True)
    """The ``nonce`` of the last launch message handled, so the view knows it may re-enable."""

    def __init__(self, session: Any = None, **kwargs: Any) -> None:
        if not kwargs.get("name"):
            kwargs["name"] = default_name()
        super().__init__(**kwargs)
        self._backend = self._attach(session)
        self._lock = threading.Lock()
        self._launching = False
        self._nonces: deque[str] = deque(maxlen=64)
        self._loading_kinds: set[str] = set()
        self._launch_future: concurrent.futures.Future[list[str]] | None = None
        self._images_futures: dict[str, concurrent.futures.Future[Any]] = {}
        self.observe(self._watch_kind, names="kind")
        self._ready = self._spawn(self._load_form(), action="Loading the form")

    # -- loading -----------------------------------------------------------------------------

    async def _load_form(self) -> None:
        """Context (limits), the current kind's images and the platform ceilings.

        Each is applied as soon as it arrives: stats can take a while when the platform's
        metrics are down (503 with retries), and the limits must not wait for them.
        """
        self._request_images(self.kind)
        stats = asyncio.ensure_future(self._backend.stats())
        try:
            context = await self._backend.context()
        except Exception as exc:  # the form still works with the client's hard limits
            log.info("LaunchForm: no context (%s); using the client's limits", type(exc).__name__)
        else:
            self._update(limits=limits_from_context(context))
        try:
            ceiling = await stats
        except Exception as exc:  # the load-aware warning is optional
            log.debug("LaunchForm: no stats (%s); no load-aware warning", type(exc).__name__)
        else:
            values = {"cores": getattr(ceiling, "cores_max", None), "ram": getattr(ceiling, "ram_max_gb", None)}
            self._update(load_limits={k: v for k, v in values.items() if v})

    async def _load_images(self, kind: str) -> list[str]:
        try:
            images = await self._backend.images(kind)
            ids = sorted({i.id for i in images if i.id and (not i.types or kind in i.types)})
            self._update(images={**self.images, kind: ids})
            return ids
        finally:
            self._loading_kinds.discard(kind)

    def _watch_kind(self, change: dict[str, Any]) -> None:
        self._request_images(change["new"])

    def _request_images(self, kind: str) -> None:
        """Load the images of ``kind`` once (a failure shows and may be retried later)."""
        with self._lock:
            if kind not in KINDS or kind in self.images or kind in self._loading_kinds:
                return
            self._loading_kinds.add(kind)
        self._images_futures[kind] = self._spawn(
            self._load_images(kind), action=f"Loading {kind} images"
        )

    # -- launching ----------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The form's current launch spec (a plain dict of its fields)."""
        return {
            "name": self.name, "kind": self.kind, "image": self.image,
            "resources": self.resources, "cores": self.cores, "ram": self.ram,
            "gpus": self.gpus, "cmd": self.cmd, "args": self.args, "env": self.env,
            "replicas": self.replicas,
        }  # fmt: skip

    def code(self, registry: bool = False) -> str:
        """The equivalent ``session.create(...)`` call for the current fields.

        Example:
            >>> print(LaunchForm(session, name="a", image="skaha/x").code())
            from canfar_widgets import Session
            ...
        """
        return python_code(self.spec(), registry=registry)

    def launch(self, registry: ContainerRegistry | None = None) -> concurrent.futures.Future[list[str]]:
        """Launch the current spec; returns a future of the new ids.

        The future resolves to ``[]`` when the fields are invalid (see ``field_errors``) or a
        launch is already running, and raises when the platform refuses.
        """
        username = secret = ""
        if registry is not None:
            username = registry.username or ""
            secret = registry.secret.get_secret_value() if registry.secret else ""
        return self._start(self.spec(), username, secret, nonce="")

    def _on_launch(self, content: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        """``{kind: "launch", nonce, spec: {...}}``, registry credentials in ``buffers[0]``.

        The front end sends ``{"username", "secret"}`` as UTF-8 JSON in a binary buffer so
        that comm logging at DEBUG (which prints message content) never shows the secret.
        """
        credentials: Any = {}
        if buffers:
            try:
                credentials = json.loads(bytes(buffers[0]).decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ValueError("the registry credentials could not be read") from None
        if not isinstance(credentials, Mapping):
            credentials = {}
        username = str(credentials.get("username") or "").strip()
        secret = str(credentials.get("secret") or "")
        credentials = None
        spec = content.get("spec")
        spec = {**self.spec(), **spec} if isinstance(spec, Mapping) else self.spec()
        self._start(spec, username, secret, nonce=str(content.get("nonce") or ""))

    def _start(
        self, spec: dict[str, Any], username: str, secret: str, nonce: str
    ) -> concurrent.futures.Future[list[str]]:
        with self._lock:
            duplicate = bool(nonce) and nonce in self._nonces
            if nonce:
                self._nonces.append(nonce)
            if duplicate or self._launching:
                # A double click or a re-sent message: one launch only.
                log.debug("LaunchForm: launch ignored (%s)", "duplicate" if duplicate else "in progress")
                done: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
                done.set_result([])
                if nonce and not duplicate:
                    self._runner.call_soon(lambda: self._update(done_nonce=nonce))
                return done
            self._launching = True
        future = self._spawn(self._launch(spec, username, secret), action="Launch", busy=True)

        def finished(_: concurrent.futures.Future[list[str]]) -> None:
            with self._lock:
                self._launching = False
            if nonce:
                self._runner.call_soon(lambda: self._update(done_nonce=nonce))

        future.add_done_callback(finished)
        self._launch_future = future
        return future

    async def _launch(self, spec: dict[str, Any], username: str, secret: str) -> list[str]:
        errors = validate_spec(spec, self.limits)
        if (username or secret) and not (username and secret):
            errors["registry"] = "Registry username and Registry secret are both needed for a private image."
        request: CreateRequest | None = None
        if not errors:
            try:
                request = CreateRequest(**create_kwargs(spec))
            except ValidationError as err:
                errors.update(_model_errors(err))
        registry: ContainerRegistry | None = None
        if not errors and username:
            try:
                registry = ContainerRegistry(username=username, secret=secret)
            except ValidationError:
                # Never echo the input: it holds the secret.
                errors["registry"] = "Registry username and Registry secret must be 1-255 characters."
        secret = ""
        if errors or request is None:
            fields = ", ".join(LABELS.get(f, f) for f in errors)
            self._update(
                field_errors=errors,
                error=f"Not launched: check {fields}.",
                status=f"Not launched: check {fields}.",
            )
            return []
        self._update(field_errors={}, error="", status="Launching...")
        # As a dict with replicas: CreateRequest.model_dump() leaves replicas out (exclude=True),
        # and Backend.create turns a model into keywords through model_dump().
        validated = {**request.model_dump(by_alias=False), "replicas": request.replicas}
        ids = await self._backend.create(validated, registry=registry)  # type: ignore[arg-type]
        registry = None
        noun = "session" if len(ids) == 1 else "sessions"
        self._update(
            last_launched=list(ids),
            status=f"Launched {len(ids)} {noun}: {', '.join(ids)}",
            error="",
        )
        return list(ids)

    # -- representations ------------------------------------------------------------------------

    def _summary(self) -> str:
        launched = f", last launched {', '.join(self.last_launched)}" if self.last_launched else ""
        return f"{self.kind} {self.name!r} {self.image or '(no image)'}{launched}"

    def _static_html(self) -> str:
        rows = [
            [LABELS.get("gpus" if key == "gpu" else key, key), _html.mono(_py_literal(value))]
            for key, value in create_kwargs(self.spec()).items()
        ]
        body = _html.table_html("Launch spec", ["Field", "Value"], rows)
        if self.last_launched:
            ids = ", ".join(self.last_launched)
            body += f"<div>Last launched: {_html.mono(ids)}</div>"
        note = "static snapshot: run the notebook for the live form"
        return _html.snapshot("CANFAR launch form", body, note=note, error=self.error)
