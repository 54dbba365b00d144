"""Signals that engines publish as label values of info-style gauges."""

from __future__ import annotations

from collections.abc import Sequence

from tokenway.datalayer.exposition import Sample


def int_label(samples: Sequence[Sample], key: str) -> int | None:
    """The first integer value of a label among the samples ("None" and absent are skipped)."""
    for sample in samples:
        value = _int(sample.labels.get(key))
        if value is not None:
            return value
    return None


def summed_int_label(samples: Sequence[Sample], key: str) -> int | None:
    """The sum of an integer label over the samples, None when no sample carries one."""
    values = [v for v in (_int(sample.labels.get(key)) for sample in samples) if v is not None]
    return sum(values) if values else None


def label_set(sample: Sample | None, key: str) -> frozenset[str]:
    """A comma-separated label value as a set of names."""
    if sample is None:
        return frozenset()
    names = (name.strip() for name in sample.labels.get(key, "").split(","))
    return frozenset(name for name in names if name)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
