"""Token length distributions in the inference-perf shape: mean, std_dev, min and max."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A normal distribution of token counts clipped to [min, max]; std_dev 0 means fixed."""

    mean: int
    std_dev: float = 0.0
    min: int = 1
    max: int | None = None

    def __post_init__(self) -> None:
        if self.mean < 0 or self.min < 0 or self.std_dev < 0:
            raise ValueError("token lengths and their spread cannot be negative")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")

    def sample(self, rng: random.Random) -> int:
        value = round(rng.gauss(self.mean, self.std_dev)) if self.std_dev else self.mean
        upper = self.max if self.max is not None else value
        return max(self.min, min(value, upper))


def fixed(tokens: int) -> LengthDist:
    """Every sample is exactly `tokens`."""
    return LengthDist(mean=tokens, min=tokens, max=tokens)
