"""Fault injection knobs, changeable while the platform runs.

A :class:`Faults` instance is read by every API request on the platform thread and may be
written from any thread: each knob is a plain attribute (atomic under the GIL), validated on
assignment.

Example:
    >>> faults = Faults()
    >>> faults.latency = 0.2          # every API answer waits 200 ms (+ up to ``jitter``)
    >>> faults.error_rate = 0.1       # 10 % of API answers are 500/502/503
    >>> faults.stats_unavailable = True
    >>> faults.auth_status = 401      # the token was revoked: every API request is refused
    >>> faults.reset()
    >>> faults.error_rate
    0.0
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

__all__ = ["Faults"]


@dataclass
class Faults:
    """Runtime fault knobs.

    Attributes:
        latency: seconds added before every ``/skaha`` API answer.
        jitter: extra random delay, uniform in ``[0, jitter]`` seconds.
        error_rate: fraction (0..1) of API requests answered with a 5xx from
            ``error_statuses`` instead of being processed (the request has no effect).
        error_statuses: the statuses injected errors pick from.
        stats_unavailable: ``?view=stats`` answers 503 ``temporarily unavailable: null``
            with ``Retry-After: 30``, as the server does when its metrics backend is down.
        start_delay: when not None, overrides the platform's interactive Pending -> Running
            delay for sessions created from now on.
        auth_status: when 401 or 403, every API request is refused with it, whatever its
            credentials: 401 ``Unauthorized`` (a token that expired or was revoked mid-session)
            or 403 ``Not authorized to use the skaha system`` (the user lost access).
        pull_failures: images whose pull fails (``"*"``: every image). A headless job of
            such an image stays Pending with ``ErrImagePull`` / ``ImagePullBackOff`` events,
            as a mistyped or private image does on Kubernetes.
        unschedulable: the node is cordoned: headless jobs not started yet stay Pending with
            ``FailedScheduling`` ``0/1 nodes are available: 1 node(s) were unschedulable.``
            until it is set back to False.
    """

    latency: float = 0.0
    jitter: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    stats_unavailable: bool = False
    start_delay: float | None = None
    auth_status: int | None = None
    pull_failures: tuple[str, ...] = ()
    unschedulable: bool = False
    seed: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("latency", "jitter") and (not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if name == "error_rate" and (
            not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0
        ):
            raise ValueError(f"error_rate must be within [0, 1], got {value!r}")
        if (
            name == "start_delay"
            and value is not None
            and (not isinstance(value, int | float) or value < 0)
        ):
            raise ValueError(f"start_delay must be None or a number >= 0, got {value!r}")
        if name == "auth_status" and value not in (None, 401, 403):
            raise ValueError(f"auth_status must be None, 401 or 403, got {value!r}")
        if name == "pull_failures":
            if isinstance(value, str):
                value = (value,)
            value = tuple(str(v) for v in value)  # type: ignore[attr-defined]
        if name == "unschedulable" and not isinstance(value, bool):
            raise ValueError(f"unschedulable must be True or False, got {value!r}")
        if name == "error_statuses":
            value = tuple(int(v) for v in value)  # type: ignore[attr-defined]
            if not value or any(not 500 <= v <= 599 for v in value):
                raise ValueError("error_statuses must be a non-empty list of 5xx codes")
        super().__setattr__(name, value)

    def delay(self) -> float:
        """Seconds to wait before answering this request."""
        extra = self._rng.uniform(0.0, self.jitter) if self.jitter else 0.0
        return self.latency + extra

    def injected_status(self) -> int | None:
        """A 5xx status to answer instead of processing this request, or None."""
        rate = self.error_rate
        if rate <= 0.0 or self._rng.random() >= rate:
            return None
        return self._rng.choice(self.error_statuses)

    def pull_fails(self, image: str) -> bool:
        """Whether pulling ``image`` fails now."""
        failures = self.pull_failures
        return "*" in failures or image in failures

    def reset(self) -> None:
        """Back to no faults at all."""
        for f in fields(self):
            if f.name != "seed":
                setattr(self, f.name, f.default)
