"""`weighted-random` picker: order endpoints at random, each in proportion to its total.

Spreads load where max-score would herd every concurrent request onto the single best
endpoint between metric refreshes. Sampling without replacement uses Efraimidis-Spirakis
keys, taken as log(u) / w: u ** (1 / w) underflows to 0 for small totals, and the ties it
makes would all go one way. Endpoints with a zero total come last, in random order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params

TYPE = "weighted-random"


def _key(total: float, u: float) -> tuple[int, float]:
    if total <= 0.0:
        return (0, u)
    return (1, math.log(u) / total if u > 0.0 else -math.inf)


class WeightedRandomPicker:
    type_name = TYPE

    def pick(
        self, endpoints: Sequence[EndpointSnapshot], totals: Sequence[float], rng: random.Random
    ) -> list[EndpointSnapshot]:
        keyed = sorted(
            ((_key(total, rng.random()), i) for i, total in enumerate(totals)), reverse=True
        )
        return [endpoints[i] for _, i in keyed]


def build(params: Mapping[str, Any] | None) -> WeightedRandomPicker:
    parse_params(TYPE, NoParams, params)
    return WeightedRandomPicker()
