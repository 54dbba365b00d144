"""Passive health of one endpoint: outlier ejection with exponential backoff and a half-open probe.

Driven only by what requests report (connect errors, 5xx and timeouts count as failures) and an
explicit `now`; no timers. An ejected endpoint becomes a probe candidate when its backoff runs
out; the next report decides: a success closes it (backoff back to the base), a failure ejects it
again for twice as long, up to the cap.
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

    def state(self, now: float) -> Health:
        if self.ejected_until is None:
            return Health.HEALTHY
        return Health.EJECTED if now < self.ejected_until else Health.PROBING

    def success(self, now: float) -> None:
        state = self.state(now)
        if state is Health.EJECTED:
            # A request that started before the ejection says little about the endpoint now.
            return
        self.consecutive_failures = 0
        if state is Health.PROBING:
            self.ejected_until = None
            self.backoff = 0.0

    def failure(self, now: float, policy: HealthPolicy) -> None:
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
        self.ejected_until = now + backoff
        self.consecutive_failures = 0
        self.ejections += 1
