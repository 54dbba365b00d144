"""Stage 4b: the Inference Gateway's request headers that adjust a resolved route.

- `x-gateway-inference-objective` names an objective from the platform file; its priority
  replaces the model's. Behind a gateway (which sets or strips the header) any objective counts;
  from a client directly only one that does not raise the priority, so a client can mark its
  own traffic sheddable but cannot jump the queue.
- `x-gateway-model-name-rewrite` replaces the model sent upstream. Only a gateway in front may
  ask for it: from a client it would bypass the allow-lists kept per public model name.

Hints that are not honoured are recorded in the request's annotations, never rejected: a gateway
that sends an objective this file does not know must not break its traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tokenway.gateway.context import Route

OBJECTIVE_HEADER = "x-gateway-inference-objective"
REWRITE_HEADER = "x-gateway-model-name-rewrite"


def apply_request_hints(
    route: Route,
    headers: Mapping[str, str],
    objectives: Mapping[str, int],
    *,
    via_gateway: bool,
    base_model: str | None,
    annotations: dict[str, str],
) -> Route:
    """The route after the objective and rewrite headers (the same route when there are none)."""
    objective = headers.get(OBJECTIVE_HEADER)
    if objective:
        priority = objectives.get(objective)
        if priority is None:
            annotations["objective"] = f"unknown: {objective}"
        elif not via_gateway and priority > route.priority:
            annotations["objective"] = f"ignored (raises priority): {objective}"
        else:
            annotations["objective"] = objective
            route = replace(route, priority=priority)
    rewrite = headers.get(REWRITE_HEADER)
    if rewrite and rewrite != route.upstream_model:
        if not via_gateway:
            annotations["model_rewrite"] = "ignored (client request)"
        else:
            annotations["model_rewrite"] = rewrite
            # An adapter unless it is the pool's base model (or the pool serves no adapters).
            plain = rewrite == base_model or (base_model is None and route.adapter is None)
            route = replace(route, upstream_model=rewrite, adapter=None if plain else rewrite)
    return route
