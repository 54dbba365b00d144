"""`healthy` filter: drop endpoints the data layer marked unhealthy.

Sending to a failing endpoint only to retry elsewhere costs a round trip and a retry budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "healthy"


class HealthyFilter:
    type_name = TYPE

    def filter(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot]
    ) -> list[EndpointSnapshot]:
        return [e for e in endpoints if e.healthy]


def build(params: Mapping[str, Any] | None) -> HealthyFilter:
    parse_params(TYPE, NoParams, params)
    return HealthyFilter()
