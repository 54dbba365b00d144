"""Passive health of one endpoint: outlier ejection with exponential backoff and a half-open probe.

Driven only by what requests report (connect errors, 5xx and timeouts count as failures) and an
explicit `now`; no timers. An ejected endpoint becomes a probe candidate when its backoff runs
out; one trial request is admitted and its report decides: a success closes it (backoff back to
the base), a failure ejects it again for twice as long, up to the cap. Reports of requests sent
before the latest ejection are stale and ignored: a long stream that ends well after the
endpoint failed says nothing about it now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    PROBING = "probing"
    """Backoff over: admitted for a trial request whose outcome decides."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """When to eject an endpoint and for how long."""

    failure_threshold: int = 5
    """Consecutive failures that eject a healthy endpoint (Envoy's consecutive_5xx default)."""
    base_ejection: float = 1.0
    """Seconds of the first ejection; each failed probe doubles it."""
    max_ejection: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not 0 < self.base_ejection <= self.max_ejection:
            raise ValueError("need 0 < base_ejection <= max_ejection")


@dataclass(slots=True)
class PassiveHealth:
    """One endpoint's consecutive-failure count and ejection window."""

    consecutive_failures: int = 0
    ejected_until: float | None = None
    """End of the current ejection; None when the endpoint was never ejected or has recovered."""
    backoff: float = 0.0
    """Length of the current (or last) ejection; 0 when the endpoint is closed."""
    ejections: int = 0
    """Ejections so far, for telemetry."""
    ejected_at: float = float("-inf")
    probe_started: float | None = None
    """When the trial request of the current probe was sent; None while none is out."""

    def state(self, now: float) -> Health:
        if self.ejected_until is None:
            return Health.HEALTHY
        return Health.EJECTED if now < self.ejected_until else Health.PROBING

    def admits(self, now: float) -> bool:
        """Whether a request may be sent now (a probing endpoint takes one trial at a time)."""
        state = self.state(now)
        return state is Health.HEALTHY or (state is Health.PROBING and self.probe_started is None)

    def sent(self, now: float) -> None:
        """A request was sent; while probing, the first one is the trial."""
        if self.probe_started is None and self.state(now) is Health.PROBING:
            self.probe_started = now

    def ended(self, started: float) -> None:
        """A request ended, reported or not (a client that left reports nothing): a trial that
        ended without a verdict frees the probe for another one."""
        if self.probe_started == started:
            self.probe_started = None

    def success(self, now: float, started: float) -> None:
        if started < self.ejected_at or self.state(now) is Health.EJECTED:
            return
        self.consecutive_failures = 0
        if self.state(now) is Health.PROBING:
            self.ejected_until = None
            self.backoff = 0.0
            self.probe_started = None

    def failure(self, now: float, started: float, policy: HealthPolicy) -> None:
        if started < self.ejected_at:
            return
        state = self.state(now)
        if state is Health.EJECTED:
            return
        if state is Health.PROBING:
            self._eject(now, min(self.backoff * 2, policy.max_ejection))
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= policy.failure_threshold:
            self._eject(now, policy.base_ejection)

    def _eject(self, now: float, backoff: float) -> None:
        self.backoff = backoff
        self.ejected_at = now
        self.ejected_until = now + backoff
        self.consecutive_failures = 0
        self.probe_started = None
        self.ejections += 1
