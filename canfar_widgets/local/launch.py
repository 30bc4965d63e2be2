"""A headless job's container spec, built the way the server fills its launch template.

The server does not pass ``cmd``, ``args`` and ``env`` to Kubernetes as data. It writes them
into a YAML fragment, the "image bundle" (``PostAction.getHeadlessImageBundle``)::

    image: "<image>"
            command: ["<cmd>"]
            args: ["<arg1>", "<arg2>"]
            env:
            - name: <KEY>
              value: "<VALUE>"

puts that fragment into ``launch-headless.yaml`` with ``String.replaceAll`` (so the text is
read as a regex *replacement*: ``$`` and ``\\`` are special) and parses the result with
SnakeYAML. Doing the same here (PyYAML is SnakeYAML's origin and parses alike) gives the same
argv, the same environment and the same refusals: ``$HOME`` is a 400
``Illegal group reference``, a ``"`` breaks the YAML (500), ``a\\b`` arrives as ``ab``.

Example:
    >>> spec = container_spec("images.canfar.net/skaha/terminal:1.1.2", "echo", "a\\\\b c", [])
    >>> spec.argv, spec.env
    (('echo', 'ab', 'c'), ())
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from canfar_widgets.local.formats import JavaError, java_replacement, java_split

__all__ = ["ContainerSpec", "container_spec", "fill"]

BUNDLE_KEY = "headless.image.bundle"
_PLACEHOLDER = "${" + BUNDLE_KEY + "}"
# The part of launch-headless.yaml around the bundle, with its indentation (helm blocks left
# out, so a YAML error's line/column differs from the server's; its kind and message do not).
_TEMPLATE = """\
apiVersion: batch/v1
kind: Job
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: "skaha-headless"
        # image and start of the 'env' label comes from the image bundle
        ${headless.image.bundle}
        - name: skaha_hostname
          value: "local"
        workingDir: "/"
"""
# PyYAML's error classes and the SnakeYAML ones the server's 500 body names.
_SNAKE = {
    "ReaderError": "org.yaml.snakeyaml.reader.ReaderException",
    "ScannerError": "org.yaml.snakeyaml.scanner.ScannerException",
    "ParserError": "org.yaml.snakeyaml.parser.ParserException",
    "ComposerError": "org.yaml.snakeyaml.composer.ComposerException",
    "ConstructorError": "org.yaml.snakeyaml.constructor.ConstructorException",
}


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What Kubernetes was asked to run: image, argv (None: the image's entrypoint), env."""

    image: str
    argv: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]


def fill(template: str, key: str, value: str) -> str:
    """``SessionJobBuilder.setConfigValue``: ``template.replaceAll("\\$[{]key[}]", value)``.

    Raises :class:`JavaError` exactly where Java's ``replaceAll`` throws; a template without
    the placeholder is returned unchanged (Java never reads the replacement then).
    """
    placeholder = "${" + key + "}"
    if placeholder not in template:
        return template
    return java_replacement(value, placeholder).join(template.split(placeholder))


def bundle(image: str, cmd: str | None, args: str | None, envs: Sequence[str]) -> str:
    """``PostAction.getHeadlessImageBundle``, character for character."""
    parts = [f'image: "{image}"']
    if cmd is not None:
        parts.append(f'\n        command: ["{cmd}"]')
    if args is not None:
        arg_list = java_split(args, " ")  # "" gives [""], " " gives [] (no args line)
        if arg_list:
            parts.append("\n        args: [" + ", ".join(f'"{a}"' for a in arg_list) + "]")
    parts.append("\n        env:")
    for entry in envs:
        key_value = java_split(entry, "=")
        if len(key_value) == 2:  # anything else is dropped (logged at debug level)
            parts.append(f"\n        - name: {key_value[0]}")
            parts.append(f'\n          value: "{key_value[1]}"')
    return "".join(parts)


def _yaml() -> Any:
    """PyYAML, imported on first headless create (untyped: main's mypy config ignores it)."""
    import yaml

    return yaml


def _snake_error(err: Exception) -> JavaError:
    name = _SNAKE.get(type(err).__name__, "org.yaml.snakeyaml.error.YAMLException")
    text = str(err).replace('  in "<unicode string>"', " in 'reader'")
    return JavaError(name, text)


def _scalar(value: Any) -> str | None:
    # The Kubernetes client's constructor turns any scalar into the String field it fills.
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def container_spec(
    image: str, cmd: str | None, args: str | None, envs: Sequence[str]
) -> ContainerSpec:
    """The container a headless launch gets, or :class:`JavaError` as the server fails.

    An IllegalArgumentException (``$x``) is the server's 400; any other error (``$1``, a
    YAML that does not parse, a structure that is no container) its 500.
    """
    return _container_spec(image, cmd, args, tuple(envs))


# The replicas of a batch share image, command, arguments and environment (the name is not
# in the document), so a burst of creates parses the YAML once, not once per replica.
# ContainerSpec is frozen and made of tuples: one object can be shared. Errors are not kept.
@functools.lru_cache(maxsize=64)
def _container_spec(
    image: str, cmd: str | None, args: str | None, envs: tuple[str, ...]
) -> ContainerSpec:
    document = fill(_TEMPLATE, BUNDLE_KEY, bundle(image, cmd, args, envs))
    yaml = _yaml()
    try:  # libyaml when present (fast); the pure-Python parser words errors like SnakeYAML
        job = yaml.load(document, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        try:
            job = yaml.safe_load(document)
        except yaml.YAMLError as err:
            raise _snake_error(err) from None
    try:
        container = job["spec"]["template"]["spec"]["containers"][0]
        command = container.get("command") or []
        arguments = container.get("args") or []
        env = [(_scalar(e.get("name")), _scalar(e.get("value"))) for e in container.get("env")]
        argv = [_scalar(a) for a in (*command, *arguments)]
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise JavaError(
            "java.lang.IllegalStateException", f"unexpected job structure: {err}"
        ) from None
    user_env = tuple(env[:-1])  # the last entry is the template's own skaha_hostname
    return ContainerSpec(
        image=_scalar(container.get("image")) or "",
        argv=tuple(a or "" for a in argv) if command else None,
        env=tuple((name or "", value or "") for name, value in user_env),
    )
