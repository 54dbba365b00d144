"""Load shapes: rate stages (constant or Poisson arrivals) and fixed-concurrency stages.

Arrival times are computed up front from a seed, so a workload is a plain list of requests that
the HTTP client, the real-time simulator and the virtual-time runner all replay identically.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from tokenway.bench.workload import WorkloadRequest

Process = Literal["constant", "poisson"]


@dataclass(frozen=True, slots=True)
class RateStage:
    """Open-loop load: requests arrive at `rate` per second for `duration` s or `count` requests."""

    rate: float
    duration: float | None = None
    count: int | None = None
    process: Process = "poisson"

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("a rate stage needs a positive rate")
        _check_bounds(self.duration, self.count)


@dataclass(frozen=True, slots=True)
class ConcurrencyStage:
    """Closed-loop load: `concurrency` requests in flight, each sent when the previous one ends."""

    concurrency: int
    duration: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("a concurrency stage needs at least 1 request in flight")
        _check_bounds(self.duration, self.count)


Stage = RateStage | ConcurrencyStage


def _check_bounds(duration: float | None, count: int | None) -> None:
    if (duration is None) == (count is None):
        raise ValueError("give a stage exactly one of duration or count")
    if (duration is not None and duration <= 0) or (count is not None and count < 1):
        raise ValueError("a stage's duration and count must be positive")


def arrival_times(stage: RateStage, seed: int) -> list[float]:
    """Send offsets in seconds from the stage start; Poisson gaps are exponential, mean 1/rate."""
    rng = random.Random(seed)
    times: list[float] = []
    now = 0.0
    limit = stage.count if stage.count is not None else None
    while True:
        if stage.process == "poisson":
            now += rng.expovariate(stage.rate)
        else:
            now = len(times) / stage.rate
        if (limit is not None and len(times) >= limit) or (
            stage.duration is not None and now >= stage.duration
        ):
            return times
        times.append(now)


def with_arrivals(
    requests: Iterable[WorkloadRequest], times: Iterable[float], offset: float = 0.0
) -> list[WorkloadRequest]:
    """Pairs requests with arrival times (offset added); as long as the shorter of the two."""
    return [
        dataclasses.replace(request, arrival=offset + at)
        for request, at in zip(requests, times, strict=False)
    ]


def rate_workload(
    stream: Iterator[WorkloadRequest], stage: RateStage, seed: int, offset: float = 0.0
) -> list[WorkloadRequest]:
    """The stage's requests, taken from `stream`, with arrivals starting at `offset`."""
    times = arrival_times(stage, seed)
    return with_arrivals(itertools.islice(stream, len(times)), times, offset)
