"""`healthy` filter: drop endpoints the data layer marked unhealthy, unless none is healthy.

Sending to a failing endpoint only to retry elsewhere costs a round trip and a retry budget.
When every endpoint looks unhealthy the filter passes them all (Envoy's "panic" routing): the
health signal is then more likely wrong (a burst made scrapes fail, a shared blip ejected
everyone) than the whole pool dead, and trying costs a fast connect error at worst, where
refusing would turn the pool into a guaranteed 503 until the next successful scrape.
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
        healthy = [e for e in endpoints if e.healthy]
        return healthy or list(endpoints)


def build(params: Mapping[str, Any] | None) -> HealthyFilter:
    parse_params(TYPE, NoParams, params)
    return HealthyFilter()
