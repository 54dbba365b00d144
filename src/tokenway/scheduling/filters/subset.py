"""`subset` filter: honour the data plane's endpoint subset hint (envoy.lb.subset_hint).

Per the Endpoint Picker Protocol only hinted endpoints may be picked; an empty hint leaves
nothing, which the caller answers with 503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "subset"


class SubsetFilter:
    type_name = TYPE

    def filter(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot]
    ) -> list[EndpointSnapshot]:
        if request.subset is None:
            return list(endpoints)
        return [e for e in endpoints if e.address in request.subset]


def build(params: Mapping[str, Any] | None) -> SubsetFilter:
    parse_params(TYPE, NoParams, params)
    return SubsetFilter()
