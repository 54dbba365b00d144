"""`round-robin` picker: ignore scores and rotate through the candidates.

The baseline every LLM-aware policy is measured against (a Kubernetes Service behaves so).
Fallbacks follow in rotation order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params

TYPE = "round-robin"


class RoundRobinPicker:
    type_name = TYPE

    def __init__(self) -> None:
        self._turn = 0

    def pick(
        self, endpoints: Sequence[EndpointSnapshot], totals: Sequence[float], rng: random.Random
    ) -> list[EndpointSnapshot]:
        if not endpoints:
            return []
        start = self._turn % len(endpoints)
        self._turn += 1
        return [*endpoints[start:], *endpoints[:start]]


def build(params: Mapping[str, Any] | None) -> RoundRobinPicker:
    parse_params(TYPE, NoParams, params)
    return RoundRobinPicker()
