"""Builds the gateway's per-configuration state from a platform file; no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from tokenway.admission.factory import build_admission
from tokenway.config.platform import PlatformConfig
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.gateway.router import ModelRouter
from tokenway.gateway.state import GatewayState, PoolRuntime, Stages
from tokenway.scheduling.factory import build_scheduler


def _base_models(config: PlatformConfig) -> dict[str, str]:
    bases: dict[str, str] = {}
    for spec in config.models:
        for target in spec.resolved_targets():
            if target.model is not None:
                bases.setdefault(spec.pool, target.model)
    return bases


def _pool_runtime(
    spec: PoolSpec,
    base_model: str | None,
    previous: PoolRuntime | None,
    registry: EndpointRegistry,
    clock: Callable[[], float],
    rng: random.Random | None,
) -> PoolRuntime:
    if previous is not None and previous.spec == spec:
        # Same pool settings: keep the learned prefix index and the admission queues.
        return PoolRuntime(spec, previous.scheduler, previous.admission, base_model)
    admission = build_admission(spec, clock, partial(registry.snapshots, spec.name))
    return PoolRuntime(spec, build_scheduler(spec, rng), admission, base_model)


def build_state(
    config: PlatformConfig,
    registry: EndpointRegistry,
    stages: Stages,
    clock: Callable[[], float],
    rng: random.Random | None = None,
    previous: GatewayState | None = None,
) -> GatewayState:
    """Router, per-pool scheduler and admission for `config`; registers the pools' endpoints.

    With `previous`, pools whose settings did not change keep their scheduler and admission.
    """
    bases = _base_models(config)
    old = previous.pools if previous is not None else {}
    pools = {
        spec.name: _pool_runtime(
            spec, bases.get(spec.name), old.get(spec.name), registry, clock, rng
        )
        for spec in config.pools
    }
    # Pools that are gone go first: an endpoint moving to a renamed pool (with another engine)
    # must not be found in its old pool.
    for name in set(registry.pools()) - set(pools):
        registry.remove_pool(name)
    for spec in config.pools:
        if spec.inference_pool is None:
            registry.set_pool(spec.name, spec.endpoints, spec.engine)
    return GatewayState(
        config=config,
        router=ModelRouter(config.models),
        pools=pools,
        stages=stages,
        registry=registry,
        objectives={o.name: o.priority for o in config.objectives},
    )
