"""`in-flight-tokens` scorer: prefer endpoints with fewer tokens in flight from the gateway.

Score (max - t) / (max - min) over in-flight prompt + output tokens, all equal -> 1. Request
counts treat a 100-token chat and an 8k-token document alike; tokens are the work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.normalise import inverted_min_max
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "in-flight-tokens"


class InFlightTokensScorer:
    type_name = TYPE

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        return inverted_min_max([e.in_flight_tokens for e in endpoints])


def build(params: Mapping[str, Any] | None) -> InFlightTokensScorer:
    parse_params(TYPE, NoParams, params)
    return InFlightTokensScorer()
