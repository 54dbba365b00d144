"""Fault injection for testing gateways: what a replica should do wrong, decided per request.

Decisions are pure over the request count, the replica's age and a seeded random stream; the
server carries them out (answer 500, never answer, close its sockets, add latency).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Fault(Enum):
    NONE = "none"
    ERROR = "error"
    HANG = "hang"
    CRASH = "crash"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    error_rate: float = 0.0
    """Fraction of requests answered with `error_status`."""
    error_status: int = 500
    crash_after: int | None = None
    """Close the listening socket and drop connections after this many requests."""
    crash_at: float | None = None
    """... or this many seconds after start."""
    hang_after: int | None = None
    """Stop answering anything (requests and /health) after this many requests."""
    hang_at: float | None = None
    slow_start: float = 0.0
    """Seconds after start during which /health and requests answer 503 (not ready)."""
    spike_rate: float = 0.0
    """Fraction of requests delayed by `spike_seconds` before reaching the engine."""
    spike_seconds: float = 0.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    fault: Fault = Fault.NONE
    delay: float = 0.0


class FaultInjector:
    def __init__(self, config: FaultConfig, started_at: float) -> None:
        self.config = config
        self.started_at = started_at
        self.requests = 0
        self.state = Fault.NONE
        self._random = random.Random(config.seed)

    def ready(self, now: float) -> bool:
        return now - self.started_at >= self.config.slow_start

    def lifecycle(self, now: float) -> Fault:
        """CRASH or HANG once a time or count trigger has fired (sticky), else NONE."""
        if self.state is not Fault.NONE:
            return self.state
        c, age = self.config, now - self.started_at
        if (c.crash_after is not None and self.requests >= c.crash_after) or (
            c.crash_at is not None and age >= c.crash_at
        ):
            self.state = Fault.CRASH
        elif (c.hang_after is not None and self.requests >= c.hang_after) or (
            c.hang_at is not None and age >= c.hang_at
        ):
            self.state = Fault.HANG
        return self.state

    def on_request(self, now: float) -> Verdict:
        fault = self.lifecycle(now)
        if fault is not Fault.NONE:
            return Verdict(fault)
        self.requests += 1
        c = self.config
        if c.error_rate and self._random.random() < c.error_rate:
            return Verdict(Fault.ERROR)
        if c.spike_rate and self._random.random() < c.spike_rate:
            return Verdict(delay=c.spike_seconds)
        return Verdict()
