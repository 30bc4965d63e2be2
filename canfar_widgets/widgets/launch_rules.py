"""The launch form's rules, in Python: the twin of ``js/lib/launch_rules.js``.

A launch rule's words live in ``vocabulary.LAUNCH_MESSAGES``; its check is written in
launch_rules.py and its twin launch_rules.js, kept equal by
tests/widgets/test_launch_form.py::test_browser_rules_match_python_rules_on_a_corpus.

The browser applies these rules as you type (instant messages next to each field, even while
the kernel is busy); the kernel applies the same rules, with the same messages, when a launch
arrives, and then builds the one :class:`~canfar_widgets.models.CreateRequest` that goes to
the client (:func:`launch_request`). Everything a rule checks against (kinds, the name rule,
limits, labels and units, patterns) and every message template come from
:mod:`canfar_widgets.vocabulary`, which the browser receives as JSON; the code here is only
the generic check.

Example:
    >>> validate_spec({"name": "-x", "kind": "notebook", "image": "skaha/astroml"})["name"][:42]
    "Name must use letters, digits and '-' only"
    >>> create_kwargs({"name": "a", "image": "skaha/x", "kind": "notebook"})
    {'name': 'a', 'image': 'skaha/x', 'kind': 'notebook'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from canfar_widgets import vocabulary
from canfar_widgets.models import CreateRequest

__all__ = [
    "HARD_LIMITS",
    "KINDS",
    "LABELS",
    "LIST_AT_MOST",
    "NAME_PATTERN",
    "PLATFORM_SIZED_KINDS",
    "check_image",
    "check_name",
    "create_kwargs",
    "describe_options",
    "launch_notes",
    "launch_request",
    "limits_from_context",
    "model_errors",
    "parse_env",
    "py_literal",
    "python_code",
    "validate_spec",
]

# The words come from canfar_widgets.vocabulary (the browser gets the same JSON).
NAME_PATTERN = vocabulary.NAME_PATTERN.pattern
KINDS = vocabulary.LAUNCH_KINDS
# Launch templates of these kinds hard-code resources; cores/ram would be ignored.
PLATFORM_SIZED_KINDS = vocabulary.INTERACTIVE_ONLY_KINDS
# Keyed by form field (the form says "gpus" where the request says "gpu").
HARD_LIMITS = {key: spec["hard"] for key, spec in vocabulary.LAUNCH_RESOURCES.items()}
LIST_AT_MOST = vocabulary.LIST_AT_MOST
_MESSAGES = vocabulary.LAUNCH_MESSAGES
LABELS = {
    "name": "Name", "kind": "Kind", "image": "Image", "resources": "Resources",
    "cores": "Cores", "ram": "RAM (GiB)", "gpus": "GPUs", "cmd": "Command",
    "args": "Arguments", "env": "Environment", "replicas": "Replicas",
    "registry": "Registry", "form": "Launch",
}  # fmt: skip

_DIGITS_RE = re.compile(r"[0-9]+")  # ASCII digits, as the browser's twin reads them
# CreateRequest field -> form field.
_MODEL_FIELDS = {
    "name": "name", "image": "image", "kind": "kind", "type": "kind", "cores": "cores",
    "ram": "ram", "gpu": "gpus", "gpus": "gpus", "cmd": "cmd", "args": "args", "env": "env",
    "replicas": "replicas",
}  # fmt: skip


def _say(message: str, /, **fields: Any) -> str:
    """``vocabulary.LAUNCH_MESSAGES[message]`` with its ``{field}``s filled in.

    Positional-only, so a template may have a field called ``key`` or ``message``.
    """
    return _MESSAGES[message].format(**fields)


def check_name(name: Any) -> str:
    """The message for a bad session name, or ``""``.

    Example:
        >>> check_name("my-job")
        ''
        >>> check_name("-bad")
        "Name must use letters, digits and '-' only, at most 63 characters, not starting or ending with '-'."
    """
    value = str(name if name is not None else "").strip()
    if not value:
        return _say("name_required")
    if vocabulary.NAME_PATTERN.fullmatch(value):
        return ""
    # Plain words only: the pattern itself means nothing to most people.
    return _say("name_rule")


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
    return int(text) if _DIGITS_RE.fullmatch(text) else _NOT_WHOLE


def _check_resource(
    label: str, value: Any, options: list[int] | None, hard: tuple[int, int], unit: str = ""
) -> str:
    """The message for one resource value (``unit`` is e.g. ``" GiB"``), or ``""``.

    A few choices are named ("Cores must be one of 1, 2, 4."); of many, out of range says the
    range ("RAM must be between 1 and 192 GiB.") and an in-range value the platform does not
    offer gets the nearest two.
    """
    n = _whole(value)
    if n is None:
        return _say("required", label=label)
    if isinstance(n, _NotWhole):
        return _say("not_whole", label=label)
    if options and len(set(options)) <= LIST_AT_MOST:
        if n in options:
            return ""
        return _say("one_of", label=label, options=describe_options(options), unit=unit)
    low, high = (min(options), max(options)) if options else hard
    if not low <= n <= high:
        return _say("between", label=label, low=low, high=high, unit=unit)
    if options and n not in options:
        below = max(o for o in options if o < n)
        above = min(o for o in options if o > n)
        return _say("not_offered", label=label, value=n, unit=unit, below=below, above=above)
    return ""


def _check_field(field: str, value: Any, options: list[int] | None = None) -> str:
    """:func:`_check_resource` for a form field of ``vocabulary.LAUNCH_RESOURCES``."""
    words = vocabulary.LAUNCH_RESOURCES[field]
    return _check_resource(words["label"], value, options, words["hard"], words["unit"])


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
            return env, _say("env_shape", line=number)
        if not vocabulary.LAUNCH_ENV_KEY_PATTERN.fullmatch(key):
            return env, _say("env_key", line=number, key=key)
        if "=" in value:
            return env, _say("env_equals", line=number)
        env[key] = value
    return env, ""


def check_image(image: Any) -> str:
    """The message for a malformed image reference, or ``""``."""
    value = str(image or "").strip()
    if not value:
        return _say("image_required")
    return "" if vocabulary.IMAGE_PATTERN.fullmatch(value) else _say("image_shape")


def _options(limits: Mapping[str, Any], key: str) -> list[int] | None:
    section = limits.get(key) if isinstance(limits, Mapping) else None
    options = section.get("options") if isinstance(section, Mapping) else None
    return [int(o) for o in options] if options else None


def validate_spec(
    spec: Mapping[str, Any], limits: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Every problem in a launch spec as ``{field: message}``; ``{}`` when it can be sent.

    ``spec`` has the form's fields (``name kind image resources cores ram gpus cmd args env
    replicas``); ``limits`` is ``{"cores": {"options": [...]}, "ram": ..., "gpus": ...}``
    from the context endpoint (without it the client's hard limits apply).

    Example:
        >>> validate_spec({"name": "ok", "kind": "notebook", "image": "skaha/astroml",
        ...                "resources": "fixed", "cores": 3}, {"cores": {"options": [1, 2, 4]}})
        {'cores': 'Cores must be one of 1, 2, 4.', 'ram': 'RAM is required.'}
    """
    limits = limits or {}
    errors: dict[str, str] = {}

    def put(field: str, message: str) -> None:
        if message:
            errors[field] = message

    kind = spec.get("kind")
    put("name", check_name(spec.get("name")))
    if kind not in KINDS:
        put("kind", _say("kind_unknown"))
    put("image", check_image(spec.get("image")))
    if spec.get("resources") == "fixed" and kind not in PLATFORM_SIZED_KINDS:
        put("cores", _check_field("cores", spec.get("cores"), _options(limits, "cores")))
        put("ram", _check_field("ram", spec.get("ram"), _options(limits, "ram")))
    # Blank or 0 is "no GPU"; anything else is checked (a non-number says so).
    if _whole(spec.get("gpus")) not in (None, 0):
        put("gpus", _check_field("gpus", spec.get("gpus"), _options(limits, "gpus")))
    if kind == "headless":
        replicas = _whole(spec.get("replicas"))
        name = str(spec.get("name") or "").strip()
        if (
            "name" not in errors
            and isinstance(replicas, int)
            and replicas > 1
            and len(name) + len(f"-{replicas}") > vocabulary.NAME_MAX_LENGTH
        ):
            put("name", _say("name_too_long_for_replicas", replicas=replicas, name=name))
        if re.search(r"\s", str(spec.get("cmd") or "").strip()):
            put("cmd", _say("cmd_one_program"))
        put("env", parse_env(spec.get("env"))[1])
        put("replicas", _check_field("replicas", spec.get("replicas")))
    return errors


def launch_notes(spec: Mapping[str, Any], images: Mapping[str, Any] | None = None) -> list[str]:
    """Warnings that do not stop a launch, said before it: ``[]`` when there is nothing to say.

    ``images`` is the form's ``{kind: [image ids]}``. An image typed by hand that is not one
    of the kind's images may not start as that kind (a notebook image has no desktop); a
    headless job with arguments and no command passes them to the image's own command.

    Example:
        >>> launch_notes({"kind": "headless", "image": "skaha/x", "args": "-v"}, {"headless": ["skaha/x"]})
        ["No command: the image's own command gets these arguments (-v)."]
    """
    notes: list[str] = []
    kind = str(spec.get("kind") or "")
    image = str(spec.get("image") or "").strip()
    known = (images or {}).get(kind)
    if image and not check_image(image) and known and image not in known:
        notes.append(_say("note_foreign_image", image=image, kind=kind))
    if kind == "headless":
        cmd = str(spec.get("cmd") or "").strip()
        args = str(spec.get("args") or "").strip()
        if args and not cmd:
            # Kubernetes semantics (the job's args without a command): the image's
            # entrypoint runs with these arguments instead of its default ones.
            notes.append(_say("note_args_without_cmd", args=args))
    return notes


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


def py_literal(value: Any) -> str:
    # JSON strings are valid Python literals, and match what the browser's JSON.stringify
    # produces, so the code shown in the form and form.code() are the same text.
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    items = ", ".join(
        f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in value.items()
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
    lines += [f"    {key}={py_literal(value)}," for key, value in create_kwargs(spec).items()]
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
        values = sorted(
            {int(o) for o in (getattr(options, "options", None) or []) if float(o).is_integer()}
        )
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


def model_errors(err: ValidationError) -> dict[str, str]:
    """``CreateRequest`` validation errors -> ``{form field: message}`` (never echoing input)."""
    out: dict[str, str] = {}
    for item in err.errors(include_input=False, include_url=False):
        loc = item.get("loc") or ()
        field = _MODEL_FIELDS.get(str(loc[0])) if loc else None
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        # A rule usually names its field first ("name: ...", "args: ...", "env['A']: ...").
        head, sep, rest = message.partition(": ")
        named = _MODEL_FIELDS.get(head.split("[", 1)[0].strip()) if sep else None
        if field is None:
            field = named or "form"
        if named == field and field != "env":  # the label says it already ("Arguments: ...")
            message = rest
        label = LABELS.get(field, field)
        out.setdefault(field, f"{label}: {message}")
    return out


def launch_request(
    spec: Mapping[str, Any], limits: Mapping[str, Any] | None = None
) -> tuple[CreateRequest | None, dict[str, str]]:
    """The one ``CreateRequest`` for a form spec, or ``{field: message}`` saying why not.

    The form's own rules first (the browser's, with its messages), then the client's: the
    request is built once, and whatever it refuses is reported on the field it concerns.
    The request then goes to ``session.create`` as it is.

    Example:
        >>> request, errors = launch_request({"name": "job", "kind": "headless",
        ...                                   "image": "skaha/terminal:1.1.2", "replicas": 2})
        >>> request.replicas, errors
        (2, {})
    """
    errors = validate_spec(spec, limits)
    if errors:
        return None, errors
    try:
        return CreateRequest(**create_kwargs(spec)), {}
    except ValidationError as err:
        return None, model_errors(err)
