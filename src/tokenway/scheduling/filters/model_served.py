"""`model-served` filter: keep endpoints that serve the requested model or adapter.

An endpoint that reports no served models is kept (unknown means "assume it serves all").
A LoRA request may also go to an endpoint that serves its base model, since vLLM loads
adapters on demand; the lora-affinity scorer then prefers replicas that have it loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "model-served"


class ModelServedFilter:
    type_name = TYPE

    def filter(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot]
    ) -> list[EndpointSnapshot]:
        wanted = {request.model}
        if request.adapter is not None and request.base_model is not None:
            wanted.add(request.base_model)
        return [
            e for e in endpoints if not e.served_models or not wanted.isdisjoint(e.served_models)
        ]


def build(params: Mapping[str, Any] | None) -> ModelServedFilter:
    parse_params(TYPE, NoParams, params)
    return ModelServedFilter()
