"""Sweeps: increasing rate stages until the target saturates, judged from each stage's results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokenway.bench.load import Process


@dataclass(frozen=True, slots=True)
class Sweep:
    """Rates start, start+step, ... (linear) or start, start*factor, ... (geometric)."""

    start: float
    stage_duration: float
    kind: Literal["linear", "geometric"] = "geometric"
    step: float = 2.0
    max_stages: int = 8
    arrivals: Process = "poisson"
    achieved_ratio: float = 0.9
    """Saturated when the achieved rate falls below this share of the offered rate."""
    latency_ratio: float = 3.0
    """Saturated when median request latency exceeds this multiple of the first stage's ..."""
    latency_floor: float = 0.05
    """... and has grown by at least this many seconds (jitter on a fast target is no knee)."""
    max_failure_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.start <= 0 or self.stage_duration <= 0 or self.max_stages < 1:
            raise ValueError("a sweep needs a positive start rate, stage duration and stage count")
        if self.step <= (1.0 if self.kind == "geometric" else 0.0):
            raise ValueError("a sweep's step must make the rate grow")

    def rate(self, index: int) -> float:
        if self.kind == "geometric":
            return float(self.start * self.step**index)
        return self.start + self.step * index


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What the sweep needs from one finished stage."""

    offered_rate: float
    """Requests per second the stage sent, over its send window."""
    achieved_rate: float
    """Successful answers per second over the same window, counting those that arrived by
    the window's end plus one median latency (see `runner.outcome`)."""
    median_latency: float
    failure_ratio: float


def saturation(sweep: Sweep, first: StageOutcome, current: StageOutcome) -> str | None:
    """Why the target counts as saturated at `current`, or None while it keeps up."""
    if current.failure_ratio > sweep.max_failure_ratio:
        return f"{current.failure_ratio:.0%} of requests failed"
    if current.achieved_rate < sweep.achieved_ratio * current.offered_rate:
        return f"answered {current.achieved_rate:.1f} req/s of {current.offered_rate:.1f} sent"
    grown = current.median_latency - first.median_latency
    if current.median_latency > sweep.latency_ratio * first.median_latency and (
        grown >= sweep.latency_floor
    ):
        return (
            f"median latency {current.median_latency:.3f}s is over {sweep.latency_ratio:g}x "
            f"the first stage's {first.median_latency:.3f}s"
        )
    return None
