"""`max-score` picker: highest weighted total first, ties broken at random (reference picker).

Random tie-breaking matters at start-up and in idle pools, where every endpoint scores the
same and a fixed order would send everything to the first one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params

TYPE = "max-score"


class MaxScorePicker:
    type_name = TYPE

    def pick(
        self, endpoints: Sequence[EndpointSnapshot], totals: Sequence[float], rng: random.Random
    ) -> list[EndpointSnapshot]:
        order = sorted(range(len(totals)), key=totals.__getitem__, reverse=True)
        # Shuffle each run of equal totals; sorting is stable, so ties are otherwise in input order.
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and totals[order[end]] == totals[order[start]]:
                end += 1
            if end - start > 1:
                run = order[start:end]
                rng.shuffle(run)
                order[start:end] = run
            start = end
        return [endpoints[i] for i in order]


def build(params: Mapping[str, Any] | None) -> MaxScorePicker:
    parse_params(TYPE, NoParams, params)
    return MaxScorePicker()
