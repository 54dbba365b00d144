"""`kv-cache` scorer: prefer endpoints with free KV cache (reference kv-cache-utilization).

Score 1 - kv_cache_usage: a full cache means preemption or queueing for new requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "kv-cache"


class KvCacheScorer:
    type_name = TYPE

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        return [1.0 - e.metrics.kv_usage for e in endpoints]


def build(params: Mapping[str, Any] | None) -> KvCacheScorer:
    parse_params(TYPE, NoParams, params)
    return KvCacheScorer()
