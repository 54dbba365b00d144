"""`lora-affinity` scorer: prefer endpoints that already run the requested LoRA adapter.

Reference values: 1.0 adapter active (running), 0.8 a free adapter slot (running < max_lora),
0.6 adapter waiting to load there, else 0. Loading an adapter into a full set of slots forces
vLLM to wait for a slot, which shows up as queueing. Requests without an adapter score 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "lora-affinity"


def _affinity(adapter: str, endpoint: EndpointSnapshot) -> float:
    metrics = endpoint.metrics
    if adapter in metrics.running_loras:
        return 1.0
    if len(metrics.running_loras) < metrics.max_loras:
        return 0.8
    if adapter in metrics.waiting_loras:
        return 0.6
    return 0.0


class LoraAffinityScorer:
    type_name = TYPE

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        adapter = request.adapter
        if adapter is None:
            return [1.0] * len(endpoints)
        return [_affinity(adapter, e) for e in endpoints]


def build(params: Mapping[str, Any] | None) -> LoraAffinityScorer:
    parse_params(TYPE, NoParams, params)
    return LoraAffinityScorer()
