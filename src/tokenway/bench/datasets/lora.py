"""Multi-LoRA traffic: each request of a base dataset goes to an adapter chosen by weight."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tokenway.bench.datasets.base import Dataset
from tokenway.bench.workload import WorkloadRequest


@dataclass(frozen=True, slots=True)
class Adapter:
    name: str
    weight: float


def tiered_adapters(
    count: int, shares: Sequence[float] = (0.6, 0.3, 0.1), prefix: str = "lora-"
) -> tuple[Adapter, ...]:
    """`count` adapters in len(shares) near-equal tiers; tier i carries shares[i] of the traffic.

    15 adapters with (0.6, 0.3, 0.1) gives 5 hot adapters at 12 % each, 5 warm at 6 % and 5 cold
    at 2 %: the skew that makes adapter-affinity routing matter.
    """
    if count < len(shares) or not shares or any(share <= 0 for share in shares):
        raise ValueError("need at least one adapter per tier and positive tier shares")
    tiers = len(shares)
    adapters = []
    for index in range(count):
        tier = index * tiers // count
        size = sum(1 for other in range(count) if other * tiers // count == tier)
        adapters.append(Adapter(f"{prefix}{index}", shares[tier] / sum(shares) / size))
    return tuple(adapters)


@dataclass(frozen=True, slots=True)
class LoraMix:
    """Sends `base`'s requests to adapters in proportion to their weights; group = adapter."""

    base: Dataset
    adapters: tuple[Adapter, ...]

    def __post_init__(self) -> None:
        if not self.adapters or any(adapter.weight <= 0 for adapter in self.adapters):
            raise ValueError("a LoRA mix needs adapters with positive weights")

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        rng = random.Random(seed ^ 0x10CA)
        names = [adapter.name for adapter in self.adapters]
        weights = [adapter.weight for adapter in self.adapters]
        for request in self.base.stream(seed):
            name = rng.choices(names, weights)[0]
            yield dataclasses.replace(request, model=name, group=name)
