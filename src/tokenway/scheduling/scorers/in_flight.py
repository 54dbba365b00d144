"""`in-flight` scorer: prefer endpoints with fewer requests the gateway has in flight there.

Score (max - n) / (max - min), all equal -> 1. The gateway's own count is exact at decision
time, unlike scraped queue lengths that lag by a scrape interval: during a burst every request
would otherwise see the same "idle" endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.normalise import inverted_min_max
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "in-flight"


class InFlightScorer:
    type_name = TYPE

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        return inverted_min_max([e.in_flight for e in endpoints])


def build(params: Mapping[str, Any] | None) -> InFlightScorer:
    parse_params(TYPE, NoParams, params)
    return InFlightScorer()
