"""The local platform's fixed configuration (everything but the runtime fault knobs).

Example:
    >>> s = Settings(start_delay=0.1, finished_ttl=5)
    >>> s.ttl_for("headless"), s.expiry_for("headless"), s.expiry_for("notebook")
    (5, 1209600, 345600)
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canfar_widgets.local.catalog import default_context, default_images

__all__ = ["Settings", "default_username", "host_cores", "host_ram_gib"]

# Kubernetes ``ttlSecondsAfterFinished`` of the shipped launch templates.
HEADLESS_TTL = 3600.0
INTERACTIVE_TTL = 86400.0


def default_username() -> str:
    """The current user's login name (the processes run as them), or ``localuser``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "localuser"
    return name or "localuser"


def host_cores() -> float:
    """This machine's CPU count (the default capacity)."""
    return float(os.cpu_count() or 1)


def host_ram_gib() -> float:
    """This machine's physical memory in GiB (the default capacity)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 16.0


@dataclass(frozen=True)
class Settings:
    """Knobs fixed for the platform's lifetime. Times are seconds.

    Attributes:
        username: who the token authenticates as (``userid`` in records).
        start_delay: interactive Pending -> Running delay.
        headless_start_delay: delay before a headless command is started.
        finished_ttl: how long finished sessions stay listed; None = the server's
            3600 s (headless) / 86400 s (interactive).
        session_expiry: ``skaha.sessionexpiry`` (interactive lifetime, also what renew grants).
        headless_expiry: the headless template's ``activeDeadlineSeconds``.
        max_sessions: active interactive sessions per user.
        allowed_hosts: image registry hosts (prefix match on the image id).
        images: the public image list; images not in it are private.
        context: the ``/v1/context`` object (cores/ram/gpu options and defaults).
        kill_grace: SIGTERM -> SIGKILL grace when a job is deleted or expires.
        terminating_delay: kept for compatibility, no effect: a deleted session is gone at
            once (404), as on the server.
        anonymous_status: 400 (faithful) or 401 for requests without credentials.
        inherit_env: give jobs the platform's whole environment instead of a minimal one.
        metrics_interval: how often running jobs' CPU/RAM use is sampled (0 = never).
        cores: CPU capacity headless jobs are scheduled on (default: this host's).
        ram: memory capacity in GiB (default: this host's physical memory).
        memory_interval: how often running jobs' memory is checked against their limit.
        image_environments: ``(image, prefix)`` pairs: a job of that image runs with
            ``<prefix>/bin`` first on ``PATH``. The image matches with or without its tag.
    """

    username: str = field(default_factory=default_username)
    start_delay: float = 1.0
    headless_start_delay: float = 0.1
    finished_ttl: float | None = None
    session_expiry: int = 345600
    headless_expiry: int = 1209600
    max_sessions: int = 5
    allowed_hosts: tuple[str, ...] = ("images.canfar.net",)
    images: tuple[Mapping[str, Any], ...] = field(default_factory=lambda: tuple(default_images()))
    context: Mapping[str, Any] | None = None
    kill_grace: float = 2.0
    terminating_delay: float = 0.3
    anonymous_status: int = 400
    inherit_env: bool = False
    metrics_interval: float = 2.0
    cores: float = field(default_factory=host_cores)
    ram: float = field(default_factory=host_ram_gib)
    memory_interval: float = 0.25
    image_environments: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "start_delay",
            "headless_start_delay",
            "kill_grace",
            "terminating_delay",
            "metrics_interval",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("cores", "ram", "memory_interval"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if self.finished_ttl is not None and self.finished_ttl < 0:
            raise ValueError("finished_ttl must be >= 0")
        if self.session_expiry <= 0 or self.headless_expiry <= 0:
            raise ValueError("expiry times must be > 0")
        if self.max_sessions < 0:
            raise ValueError("max_sessions must be >= 0")
        if self.anonymous_status not in (400, 401):
            raise ValueError("anonymous_status must be 400 or 401")
        if not self.username:
            raise ValueError("username must not be empty")
        if isinstance(self.allowed_hosts, str):
            object.__setattr__(self, "allowed_hosts", (self.allowed_hosts,))
        if self.context is None:
            object.__setattr__(self, "context", default_context(self.max_sessions))
        object.__setattr__(self, "images", tuple(self.images))

    @property
    def ctx(self) -> Mapping[str, Any]:
        assert self.context is not None
        return self.context

    def environment_for(self, image: str) -> str | None:
        """The local environment prefix mapped to ``image`` (exact id, or id without tag)."""
        untagged = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        for key, prefix in self.image_environments:
            if key in (image, untagged):
                return prefix
        return None

    def ttl_for(self, kind: str) -> float:
        """Seconds a finished session of this kind stays listed."""
        if self.finished_ttl is not None:
            return self.finished_ttl
        return HEADLESS_TTL if kind == "headless" else INTERACTIVE_TTL

    def expiry_for(self, kind: str) -> int:
        """``activeDeadlineSeconds`` a new session of this kind starts with."""
        return self.headless_expiry if kind == "headless" else self.session_expiry

    def option_list(self, key: str) -> Sequence[int]:
        """The allowed integer values of ``cores``, ``memoryGB`` or ``gpus``."""
        return list(self.ctx.get(key, {}).get("options", []))
