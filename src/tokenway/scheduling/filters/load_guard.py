"""`load-guard` filter: stop cache affinity from piling requests onto one hot replica.

Prefix and adapter affinity keep sending a popular group to the replica that holds its cache;
with the reference weights the affinity bonus (3 x match) outweighs the load scorers, so one
replica's queue grows while others idle (the vllm-router cache_aware policy sent 375 of 400
shared-prefix requests to one of 4 backends). This filter keeps only endpoints whose in-flight
count (tracked by the gateway, so it is fresh even between metric scrapes) is within
`max(slack, ratio * least)` of the least loaded candidate; affinity then decides among those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from tokenway.config.base import Section
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "load-guard"


class LoadGuardParams(Section):
    slack: int = Field(default=8, ge=0)
    """Extra in-flight requests tolerated above the least loaded endpoint."""
    ratio: float = Field(default=0.5, ge=0)
    """Extra in-flight tolerated as a share of the least loaded endpoint's count."""


class LoadGuardFilter:
    type_name = TYPE

    def __init__(self, params: LoadGuardParams) -> None:
        self._slack = params.slack
        self._ratio = params.ratio

    def filter(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot]
    ) -> list[EndpointSnapshot]:
        if not endpoints:
            return []
        least = min(e.in_flight for e in endpoints)
        limit = least + max(self._slack, self._ratio * least)
        return [e for e in endpoints if e.in_flight <= limit]


def build(params: Mapping[str, Any] | None) -> LoadGuardFilter:
    return LoadGuardFilter(parse_params(TYPE, LoadGuardParams, params))
