"""The platform's words, defined once: session states, kinds, the name rule, resource limits
and the launch form's messages.

Why one module: these words were spelled out a dozen times across the client, the widgets
and the front end, and drifted (a table still listed ``Succeeded``, which no record carries).
Everything that needs one of them imports it from here; the front end receives them as JSON
(:func:`as_json`), so a change is made in one place.

This module imports nothing heavy (no pydantic), so the widgets' front-end loader and
``canfar_widgets.sessions`` can use it at no cost.

Example:
    >>> from canfar_widgets.vocabulary import FINISHED_STATES, server_status
    >>> server_status("succeeded"), "Completed" in FINISHED_STATES
    ('Completed', True)
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, get_args

__all__ = [
    "ACTIVE_STATES",
    "BUSY_STATES",
    "FINISHED_STATES",
    "IMAGE_PATTERN",
    "INTERACTIVE_ONLY_KINDS",
    "KINDS",
    "LAUNCH_ENV_KEY_PATTERN",
    "LAUNCH_KINDS",
    "LAUNCH_MESSAGES",
    "LAUNCH_RESOURCES",
    "LIMITS",
    "LIST_AT_MOST",
    "MISSING",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "NAME_RULE",
    "STATES",
    "STATUSES",
    "STATUS_ALIASES",
    "Kind",
    "Status",
    "as_json",
    "canonical_state",
    "server_kind",
    "server_status",
]

# -- kinds ---------------------------------------------------------------------------------

Kind = Literal["desktop", "notebook", "carta", "headless", "firefly", "desktop-app", "contributed"]
"""Session types, as the official client accepts them (``type`` on the wire)."""

KINDS: tuple[str, ...] = get_args(Kind)

INTERACTIVE_ONLY_KINDS: tuple[str, ...] = ("desktop", "firefly")
"""Kinds with fixed, platform-chosen resources, one per user and no replicas."""

LAUNCH_KINDS: tuple[str, ...] = (
    "notebook",
    "desktop",
    "carta",
    "contributed",
    "firefly",
    "headless",
)
"""The kinds a person launches from the launch form, in the form's order (``desktop-app``
sessions are started from inside a desktop, not launched on their own)."""

# -- states --------------------------------------------------------------------------------

Status = Literal["Pending", "Running", "Terminating", "Succeeded", "Completed", "Error", "Failed"]
"""Status words accepted in requests. Servers only report :data:`STATES`;
``Succeeded``/``Error`` come from older documentation."""

STATUSES: tuple[str, ...] = get_args(Status)

STATES: tuple[str, ...] = ("Pending", "Running", "Terminating", "Completed", "Failed")
"""The states a v1 server reports in session records (docs/client-api.md, "Status words")."""

STATUS_ALIASES: dict[str, str] = {"Succeeded": "Completed", "Error": "Failed"}
"""Documentation words -> the words a v1 server actually reports."""

FINISHED_STATES: frozenset[str] = frozenset({"Completed", "Failed"})
"""States after which a session will not change any more."""

ACTIVE_STATES: frozenset[str] = frozenset({"Pending", "Running"})
"""States of a session that is still to produce output."""

BUSY_STATES: frozenset[str] = frozenset({"Pending", "Terminating"})
"""States that are about to change by themselves (pollers poll fast while they last)."""

MISSING = "missing"
"""What the widgets call a session the platform no longer knows (deleted, or cleaned up):
it counts as finished. Never a server state."""

_CANONICAL = {
    **{state.lower(): state for state in STATES},
    **{alias.lower(): state for alias, state in STATUS_ALIASES.items()},
}


def canonical_state(word: str) -> str | None:
    """The server's spelling of a state word (any case, aliases mapped), or None if unknown.

    Example:
        >>> canonical_state("error"), canonical_state("Running"), canonical_state("odd")
        ('Failed', 'Running', None)
    """
    return _CANONICAL.get(word.strip().lower()) if isinstance(word, str) else None


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
                return STATUS_ALIASES.get(allowed, allowed)
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


# -- names ---------------------------------------------------------------------------------

NAME_MAX_LENGTH = 63
"""Session names become pod hostnames, so they are DNS labels: at most 63 characters."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
"""A session name: a DNS label (the server accepts ``[A-Za-z0-9-]+`` but then fails later)."""

NAME_RULE = "letters, digits and '-' only, at most 63 characters, not starting or ending with '-'"
""":data:`NAME_PATTERN` in plain words, for messages."""

# -- resource limits -----------------------------------------------------------------------

LIMITS: dict[str, tuple[int, int]] = {
    "cores": (1, 256),
    "ram": (1, 512),
    "gpu": (1, 28),
    "replicas": (1, 512),
}
"""What a create request may ask for at most (inclusive), before the platform's own options.

The platform's ``/context`` narrows these further; these are the client's sanity bounds.
"""


# -- the launch form's rules ---------------------------------------------------------------
# A launch rule's words live here; its check is written twice, in
# canfar_widgets/widgets/launch_rules.py (authoritative, at launch) and its twin
# js/lib/launch_rules.js (instant feedback as you type, even with a busy kernel), kept equal
# by tests/widgets/test_launch_form.py::test_browser_rules_match_python_rules_on_a_corpus.

LAUNCH_MESSAGES: dict[str, str] = {
    "name_required": "Name is required.",
    "name_rule": f"Name must use {NAME_RULE}.",
    "name_too_long_for_replicas": (
        "Name is too long for {replicas} replicas: each session is named {name}-<n>, "
        f"at most {NAME_MAX_LENGTH} characters."
    ),
    "kind_unknown": f"Kind must be one of {', '.join(LAUNCH_KINDS)}.",
    "image_required": "Image is required.",
    "image_shape": (
        "Image must look like [registry/]project/name[:tag], "
        "e.g. images.canfar.net/skaha/astroml:latest."
    ),
    "cmd_one_program": "Command is one program without spaces; put its arguments in Arguments.",
    "required": "{label} is required.",
    "not_whole": "{label} must be a whole number.",
    "one_of": "{label} must be one of {options}{unit}.",
    "between": "{label} must be between {low} and {high}{unit}.",
    "not_offered": (
        "{label} {value}{unit} is not offered by the platform: "
        "the nearest are {below} and {above}{unit}."
    ),
    "env_shape": "Environment line {line}: expected KEY=VALUE.",
    "env_key": "Environment line {line}: {key} is not a valid variable name.",
    "env_equals": (
        "Environment line {line}: the value cannot contain '=' (the platform splits on it)."
    ),
    "note_foreign_image": (
        "{image} is not one of the platform's {kind} images: it may not start as a {kind} session."
    ),
    "note_args_without_cmd": "No command: the image's own command gets these arguments ({args}).",
}
"""Every message of the launch form's rules, as a template with ``{field}`` placeholders only
(no format specs, no ``{{``), so Python's ``str.format`` and the browser's one-line
``format`` in js/lib/launch_rules.js give the same text."""

LAUNCH_RESOURCES: dict[str, dict[str, Any]] = {
    "cores": {"label": "Cores", "unit": "", "hard": LIMITS["cores"]},
    "ram": {"label": "RAM", "unit": " GiB", "hard": LIMITS["ram"]},
    "gpus": {"label": "GPUs", "unit": "", "hard": LIMITS["gpu"]},
    "replicas": {"label": "Replicas", "unit": "", "hard": LIMITS["replicas"]},
}
"""The form's number fields (keyed as the form says them: ``gpus`` where the request says
``gpu``): the word a message uses, its unit and the client's bounds (:data:`LIMITS`)."""

LIST_AT_MOST = 8
"""A resource with at most this many choices has them named in its message; above, a list
reads like developer output ("one of 1-16, 20, 24, ..."), so the range or the nearest two."""

IMAGE_PATTERN = re.compile(r"^[^/\s]+(/[^/\s]+){1,2}$")
"""An image reference as the form accepts it: ``[registry/]project/name[:tag]``, two or three
non-empty segments, no whitespace (the same in Python and JavaScript regex syntax)."""

LAUNCH_ENV_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""An environment variable name the form accepts (a POSIX shell name)."""


def as_json() -> str:
    """Every word above as one JSON object, for the front end (injected by the loader).

    Example:
        >>> import json
        >>> json.loads(as_json())["finishedStates"]
        ['Completed', 'Failed']
    """
    words: dict[str, Any] = {
        "kinds": list(KINDS),
        "launchKinds": list(LAUNCH_KINDS),
        "interactiveOnlyKinds": list(INTERACTIVE_ONLY_KINDS),
        "states": list(STATES),
        "statusAliases": STATUS_ALIASES,
        "finishedStates": sorted(FINISHED_STATES),
        "activeStates": sorted(ACTIVE_STATES),
        "busyStates": sorted(BUSY_STATES),
        "missing": MISSING,
        "nameMaxLength": NAME_MAX_LENGTH,
        "namePattern": NAME_PATTERN.pattern,
        "nameRule": NAME_RULE,
        "limits": {key: list(bounds) for key, bounds in LIMITS.items()},
        "launchMessages": LAUNCH_MESSAGES,
        "launchResources": {
            key: {**spec, "hard": list(spec["hard"])} for key, spec in LAUNCH_RESOURCES.items()
        },
        "listAtMost": LIST_AT_MOST,
        "imagePattern": IMAGE_PATTERN.pattern,
        "envKeyPattern": LAUNCH_ENV_KEY_PATTERN.pattern,
    }
    return json.dumps(words, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":  # `python -m canfar_widgets.vocabulary`: the JSON, for node tests
    print(as_json())
