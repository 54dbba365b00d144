"""Human units in the platform file: durations ("250ms", "2s", "5m") and sizes ("32Mi", "1G")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_SIZE_SCALE = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string with a unit: ms, s, m or h."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 2s or 5m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use 500ms, 2s, 5m or 1h)")
        seconds = float(match.group(1)) * _DURATION_SCALE[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from an integer or a Kubernetes-style quantity such as 32Mi or 1G."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 32Mi")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a size (use bytes, or 512Ki, 32Mi, 1Gi)")
        size = int(float(match.group(1)) * _SIZE_SCALE[match.group(2)])
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts 500ms, 2s, 5m, 1h or a bare number of seconds."""

ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""Bytes; accepts 512Ki, 32Mi, 1G or a bare integer."""
