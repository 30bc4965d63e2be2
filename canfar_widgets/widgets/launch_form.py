"""LaunchForm: launch a CANFAR session from a notebook, with the same rules the server has.

The form is built from the platform: kinds, the images of each kind (``GET image``) and the
resource choices (``GET context``). Every field is a synced trait, so the launch spec lives
in the notebook and can be set from Python. Bad names and out-of-range resources are
reported next to their field before any request: instantly in the browser
(``js/lib/launch_rules.js``) and again in the kernel by its twin
(:mod:`canfar_widgets.widgets.launch_rules`), which builds the one ``CreateRequest`` that
``create`` is given.

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
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import traitlets
from pydantic import ValidationError

from canfar_widgets.errors import APIError, describe_error
from canfar_widgets.models import ContainerRegistry, CreateRequest, Kind
from canfar_widgets.widgets import _html
from canfar_widgets.widgets._base import CanfarWidget, Messages, log
from canfar_widgets.widgets.capacity import PlatformNumbers
from canfar_widgets.widgets.launch_rules import (
    KINDS,
    LABELS,
    create_kwargs,
    launch_notes,
    launch_request,
    limits_from_context,
    py_literal,
    python_code,
)

__all__ = ["LaunchForm", "default_name"]

# Default names: astronomers (several Canadian), plus a short random suffix.
SCIENTISTS = (
    "leavitt", "hogg", "payne", "rubin", "cannon", "hubble", "herschel", "kepler", "shapley",
    "tinsley", "burbidge", "zwicky", "oort", "sagan", "plaskett", "beals", "vandenberg",
    "bolton", "kuiper", "messier", "hale", "jansky", "penzias", "lemaitre", "chandra",
)  # fmt: skip
_SUFFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)

# What the platform says for an image it does not know (or may not pull without a login);
# its own words name an HTTP header, which helps nobody at a form.
_PRIVATE_IMAGE_HINTS = ("unknown or private image", "x-skaha-registry-auth")
PRIVATE_IMAGE = (
    "This image is private or unknown: give your registry login under 'Private image registry'."
)
RECONCILED = "the platform's answer was lost; found it by name"


def default_name(rng: random.Random | None = None) -> str:
    """A fresh valid session name: an astronomer's surname and a 4-character suffix.

    Example:
        >>> default_name(random.Random(1))
        'hogg-b9ed'
    """
    rng = rng or random.Random()
    suffix = "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(4))
    return f"{rng.choice(SCIENTISTS)}-{suffix}"


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
    images_failed = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Kinds whose images could not be read (a refused login, say): the view says "not
    loaded" instead of "Loading images..." for ever; the error itself is shown once, in
    ``error`` (or, in a Dashboard, by its login banner)."""
    limits = traitlets.Dict().tag(sync=True)
    """``{"cores"|"ram"|"gpus": {"options": [...], "default": n, ...}}`` from the context."""
    load_limits = traitlets.Dict().tag(sync=True)
    """``{"cores": n, "ram": gib}``: the largest session the platform can place (from stats)."""
    field_errors = traitlets.Dict().tag(sync=True)
    last_launched = traitlets.List(traitlets.Unicode()).tag(sync=True)
    done_nonce = traitlets.Unicode("").tag(sync=True)
    """The ``nonce`` of the last launch message handled, so the view knows it may re-enable."""
    unknown_outcome = traitlets.Dict().tag(sync=True)
    """After a launch whose answer was lost and whose session was not found:
    ``{"names": [...], "message": ...}``; the view offers "Look again". ``{}`` otherwise."""

    hold_seconds: ClassVar[float] = 20.0
    """How long the same spec is refused after an unknown outcome (it may still appear)."""

    def __init__(self, session: Any = None, **kwargs: Any) -> None:
        if not kwargs.get("name"):
            kwargs["name"] = default_name()
        super().__init__(**kwargs)
        self._attach(session)
        self._lock = threading.Lock()
        self._launching = False
        self._nonces: deque[str] = deque(maxlen=64)
        self._loading_kinds: set[str] = set()
        self._launch_future: concurrent.futures.Future[list[str]] | None = None
        self._images_futures: dict[str, concurrent.futures.Future[Any]] = {}
        # The spec whose launch has an unknown outcome, until when it is refused, when it began.
        self._held: tuple[str, float, float] | None = None
        self.observe(self._watch_kind, names="kind")
        self._ready = self._spawn(self._load_form(), action="Loading the form")

    # -- loading -----------------------------------------------------------------------------

    async def _load_form(self) -> None:
        """Context (limits), the current kind's images and the platform ceilings.

        Each is applied as soon as it arrives: stats can take a while when the platform's
        metrics are down (503 with retries), and the limits must not wait for them.
        """
        self._request_images(self.kind)
        stats = asyncio.ensure_future(self.source.stats())
        try:
            context = await self.source.context()
        except Exception as exc:  # the form still works with the client's hard limits
            log.info("LaunchForm: no context (%s); using the client's limits", type(exc).__name__)
        else:
            self._update(limits=limits_from_context(context))
        try:
            ceiling = await stats
        except Exception as exc:  # the load-aware warning is optional
            log.debug("LaunchForm: no stats (%s); no load-aware warning", type(exc).__name__)
        else:
            # PlatformLoad's numbers (widgets/capacity.py): the ceiling in GiB, the unit the
            # form's RAM is asked in, so "32Gi" reads 32 here as there (not 34.4 decimal GB).
            numbers = PlatformNumbers.from_stats(ceiling)
            values = {"cores": numbers.session_cores, "ram": numbers.session_ram_gib}
            self._update(load_limits={k: v for k, v in values.items() if v})

    async def _load_images(self, kind: str) -> list[str]:
        try:
            images = await self.source.images(cast(Kind, kind))  # one of KINDS: checked on request
            ids = sorted({i.id for i in images if i.id and (not i.types or kind in i.types)})
            self._update(images={**self.images, kind: ids})
            return ids
        except Exception:
            self._update(images_failed=sorted({*self.images_failed, kind}))
            raise  # shown by _spawn, once
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
        if kind in self.images_failed:  # trying again: "Loading images..." while it does
            self._update(images_failed=[k for k in self.images_failed if k != kind])
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

    def notes(self) -> list[str]:
        """What the form warns about before a launch (it still launches): an image that is
        not one of the kind's, arguments without a command. The browser shows the same.

        Example:
            >>> LaunchForm(session, kind="headless", image="skaha/terminal:1.1.2", args="-v").notes()
            ["No command: the image's own command gets these arguments (-v)."]
        """
        return launch_notes(self.spec(), self.images)

    def code(self, registry: bool = False) -> str:
        """The equivalent ``session.create(...)`` call for the current fields.

        Example:
            >>> print(LaunchForm(session, name="a", image="skaha/x").code())
            from canfar_widgets import Session
            ...
        """
        return python_code(self.spec(), registry=registry)

    def launch(
        self, registry: ContainerRegistry | None = None
    ) -> concurrent.futures.Future[list[str]]:
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

    def _on_look_again(self, content: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        """``{kind: "look_again"}``: the "Look again" button after an unknown outcome."""
        self.look_again()

    _messages: ClassVar[Messages] = {"launch": _on_launch, "look_again": _on_look_again}
    # (what the view sends, plus "visibility")

    def look_again(self) -> concurrent.futures.Future[list[str]]:
        """After an unknown outcome, look for the lost session(s) by name once more.

        Found: reported as launched (and the same spec may be launched again at once). Not
        found: said so; the hold on the same spec runs on.

        Example:
            >>> form.look_again().result()    # after "outcome unknown"
            ['q2w8e4r6']
        """
        return self._spawn(self._look_again(), action="Looking again", busy=True)

    async def _look_again(self) -> list[str]:
        pending = dict(self.unknown_outcome)
        names = [str(n) for n in pending.get("names") or []]
        held = self._held
        if not names:
            return []
        began = held[2] if held else 0.0
        self._update(status=f"Looking for {', '.join(names)}...")
        records = await self.source.fetch()
        known = set(self.last_launched)
        found: list[str] = []
        for name in names:
            # The platform's clock may differ from ours: a minute of slack (names are the user's).
            matches = [
                r.id for r in records
                if r.name == name and r.id and r.id not in known and _started_after(r.startTime, began - 60)
            ]  # fmt: skip
            if len(matches) == 1:
                found.append(matches[0])
        if len(found) == len(names):
            with self._lock:
                self._held = None
            self._update(
                unknown_outcome={},
                last_launched=list(self.last_launched) + found,
                status=_launched_text(found, reconciled=len(found)),
                error="",
            )
            return found
        missing = len(names) - len(found)
        message = (
            f"Still not found: {missing} of {len(names)} session(s) named {', '.join(names)}. "
            "The platform may still be starting it; look again in a moment before launching again."
        )
        self._update(unknown_outcome={**pending, "message": message}, status="", error=message)
        return found

    def _start(
        self, spec: dict[str, Any], username: str, secret: str, nonce: str
    ) -> concurrent.futures.Future[list[str]]:
        with self._lock:
            duplicate = bool(nonce) and nonce in self._nonces
            if nonce:
                self._nonces.append(nonce)
            if duplicate or self._launching:
                # A double click or a re-sent message: one launch only.
                log.debug(
                    "LaunchForm: launch ignored (%s)", "duplicate" if duplicate else "in progress"
                )
                done: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
                done.set_result([])
                if nonce and not duplicate:
                    self._runner.call_soon(lambda: self._update(done_nonce=nonce))
                return done
            refusal = self._hold_refusal(spec)
            if refusal:
                done = concurrent.futures.Future()
                done.set_result([])

                def refuse() -> None:
                    self._update(error=refusal, status="", done_nonce=nonce or self.done_nonce)

                self._runner.call_soon(refuse)
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

    def _hold_refusal(self, spec: Mapping[str, Any]) -> str:
        """Why this spec may not be launched now (its last launch's outcome is unknown), or ``""``.

        Caller holds ``_lock``.
        """
        held = self._held
        if held is None:
            return ""
        key, until, _ = held
        if time.monotonic() >= until:
            self._held = None
            return ""
        if key != _spec_key(spec):
            return ""
        wait = max(1, round(until - time.monotonic()))
        return (
            "Not launched again: the last launch of this spec may have created its session "
            f"(the platform's answer was lost). Press 'Look again', or wait {wait} s to launch anyway."
        )

    async def _launch(self, spec: dict[str, Any], username: str, secret: str) -> list[str]:
        request, errors = launch_request(spec, self.limits)
        if (username or secret) and not (username and secret):
            errors["registry"] = (
                "Registry username and Registry secret are both needed for a private image."
            )
        registry: ContainerRegistry | None = None
        if not errors and username:
            try:
                registry = ContainerRegistry.model_validate(
                    {"username": username, "secret": secret}
                )
            except ValidationError:
                # Never echo the input: it holds the secret.
                errors["registry"] = (
                    "Registry username and Registry secret must be 1-255 characters."
                )
        secret = ""
        if errors or request is None:
            fields = ", ".join(LABELS.get(f, f) for f in errors)
            # One message per event: the alert says it, the status line stays empty.
            self._update(field_errors=errors, error=f"Not launched: check {fields}.", status="")
            return []
        self._update(field_errors={}, error="", status="Launching...", unknown_outcome={})
        began = time.time()
        try:
            ids, reconciled, lost, failure = await self._create(request, registry)
        except APIError as exc:
            ids, reconciled, lost, failure = [], 0, [], exc
        finally:
            registry = None
        if isinstance(failure, APIError) and _is_private_image_refusal(failure) and not ids:
            # The field says what to do; the alert points at the field (one message each).
            self._update(
                field_errors={"image": PRIVATE_IMAGE}, error="Not launched: check Image.", status=""
            )
            return []
        if lost:
            names = [err.name for err in lost]
            with self._lock:
                self._held = (_spec_key(spec), time.monotonic() + self.hold_seconds, began)
            launched = f"{_launched_text(ids, reconciled)} " if ids else ""
            message = (
                f"{launched}Outcome unknown for {', '.join(repr(n) for n in names)}: the platform's "
                f"answer was lost ({lost[0].reason}) and no session of that name was found yet. "
                "It may still appear: press 'Look again' before launching it again."
            )
            self._update(
                last_launched=list(ids),
                unknown_outcome={"names": names, "message": message},
                error=message,
                status="",
            )
            return list(ids)
        if failure is not None:
            if not ids:
                raise failure
            message = self._scrub(
                f"{_launched_text(ids, reconciled)} The others failed: {describe_error(failure)}"
            )
            self._update(last_launched=list(ids), error=message, status="")
            return list(ids)
        self._update(last_launched=list(ids), status=_launched_text(ids, reconciled), error="")
        return list(ids)

    async def _create(
        self, request: CreateRequest, registry: ContainerRegistry | None
    ) -> tuple[list[str], int, list[Any], BaseException | None]:
        """``(ids, how many were found by name, AnswerLost errors, first other failure)``.

        Each replica's outcome comes from :meth:`SessionSource.launch_outcomes`, so the form
        can say that an answer was lost and the session found by name, or that the outcome
        is unknown (another client only says ids or raises).
        """
        outcomes = await self.source.launch_outcomes(request, registry)
        ids = [str(o.id) for o in outcomes if o.id]
        reconciled = sum(1 for o in outcomes if o.id and o.reconciled)
        lost = [o.error for o in outcomes if o.unknown and o.error is not None]
        failures = [o.error for o in outcomes if not o.id and not o.unknown and o.error is not None]
        return ids, reconciled, lost, failures[0] if failures else None

    # -- representations ------------------------------------------------------------------------

    def _summary(self) -> str:
        launched = f", last launched {', '.join(self.last_launched)}" if self.last_launched else ""
        return f"{self.kind} {self.name!r} {self.image or '(no image)'}{launched}"

    def _static_html(self) -> str:
        rows = [
            [LABELS.get("gpus" if key == "gpu" else key, key), _html.mono(py_literal(value))]
            for key, value in create_kwargs(self.spec()).items()
        ]
        body = _html.table_html("Launch spec", ["Field", "Value"], rows)
        if self.last_launched:
            ids = ", ".join(self.last_launched)
            body += f"<div>Last launched: {_html.mono(ids)}</div>"
        note = "static snapshot: run the notebook for the live form"
        return _html.snapshot("CANFAR launch form", body, note=note, error=self.error)


def _launched_text(ids: Sequence[str], reconciled: int = 0) -> str:
    """``"Launched 2 sessions: a, b"``; found-by-name replicas are said so.

    Example:
        >>> _launched_text(["k3x9ab2q"], reconciled=1)
        "Launched 1 session (the platform's answer was lost; found it by name): k3x9ab2q"
    """
    noun = "session" if len(ids) == 1 else "sessions"
    how = ""
    if reconciled:
        how = (
            f" ({RECONCILED})"
            if reconciled == len(ids)
            else (f" ({reconciled} of them: the platform's answer was lost; found by name)")
        )
    return f"Launched {len(ids)} {noun}{how}: {', '.join(ids)}"


def _spec_key(spec: Mapping[str, Any]) -> str:
    """What makes two launches the same launch: the create keywords, in a stable text."""
    return json.dumps(create_kwargs(spec), sort_keys=True, default=str)


def _is_private_image_refusal(exc: APIError) -> bool:
    text = f"{exc.message or ''}".lower()
    return exc.status_code == 400 and any(hint in text for hint in _PRIVATE_IMAGE_HINTS)


def _started_after(start: str | None, earliest: float) -> bool:
    from canfar_widgets.models import parse_time

    when = parse_time(start)
    return when is None or when.timestamp() >= earliest
