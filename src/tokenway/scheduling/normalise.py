"""Shared score shapes, so every load scorer ranks endpoints the same way."""

from __future__ import annotations

from collections.abc import Sequence


def inverted_min_max(values: Sequence[float]) -> list[float]:
    """(max - v) / (max - min): the least loaded scores 1, the most 0, all equal -> all 1."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    span = high - low
    return [(high - v) / span for v in values]
