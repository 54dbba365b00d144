"""Reads a few named series out of Prometheus text exposition, skipping everything else.

A model server's /metrics is mostly histogram buckets we never look at (a vLLM page is about
500 lines, 50 KB), and the gateway reads it every 50 ms from every endpoint. prometheus_client's
`text_string_to_metric_families` parses every line into objects: measured at about 21 ms per
vLLM page on the 2-core development machine, which at 64 endpoints every 50 ms is 27 cores.
Jumping straight to the wanted names with one compiled regex (their common literal prefix lets
the regex engine skip the rest at C speed) measured about 0.25 ms for the same page, 80x less
(`benchmarks/datalayer.py` re-measures both in one run).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_ESCAPE = re.compile(r"\\[\\\"n]")


@dataclass(frozen=True, slots=True)
class Sample:
    """One series: its labels and its current value."""

    labels: Mapping[str, str]
    value: float


class ExpositionReader:
    """Extracts the samples of a fixed set of metric names from exposition text."""

    __slots__ = ("_pattern",)

    def __init__(self, names: Iterable[str]) -> None:
        wanted = sorted(set(names), key=len, reverse=True)
        if not wanted:
            raise ValueError("an exposition reader needs at least one metric name")
        prefix = _common_prefix(wanted)
        alternatives = "|".join(re.escape(name[len(prefix) :]) for name in wanted)
        self._pattern = re.compile(
            # Blanks may lead a line and separate the name from its labels (the text format
            # allows both, and prometheus_client reads them).
            "\n[ \t]*(" + re.escape(prefix) + "(?:" + alternatives + "))[ \t]*"
            r'(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?[ \t]+(\S+)[ \t]*(?:\S+[ \t]*)?(?=\r?\n|$)'
        )

    def read(self, text: str) -> dict[str, list[Sample]]:
        """Samples by metric name; a name absent from the text is absent from the result.

        Raises ValueError when a wanted series carries a value that is not a number.
        """
        found: dict[str, list[Sample]] = {}
        for match in self._pattern.finditer("\n" + text):
            name, labels, value = match.groups()
            sample = Sample(_labels(labels) if labels else {}, _number(name, value))
            found.setdefault(name, []).append(sample)
        return found


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _labels(text: str) -> dict[str, str]:
    return {
        key: _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value) if "\\" in value else value
        for key, value in _LABEL.findall(text)
    }


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} has a non-numeric value {value!r}") from None


def total(samples: Sequence[Sample]) -> float:
    """Sum over series: counts split by label (per engine, per model) add up. A NaN or infinite
    series (a server's gauge with nothing to report) counts as 0 rather than failing the scrape."""
    return sum(sample.value for sample in samples if math.isfinite(sample.value))


def mean(samples: Sequence[Sample]) -> float:
    """Mean over series: for utilisation of equal-sized caches (one per data-parallel engine)."""
    return total(samples) / len(samples) if samples else 0.0
