"""The platform file: one schema read by the gateway, the endpoint picker and the renderer."""

from __future__ import annotations

from pydantic import model_validator

from tokenway.config.access import AccessSettings, identity_problems
from tokenway.config.base import Section
from tokenway.config.deployments import Deployments
from tokenway.config.gateway import GatewaySettings
from tokenway.config.limits_store import LimitsStoreSettings
from tokenway.config.models import ModelSpec
from tokenway.config.objectives import Objectives
from tokenway.config.observability import ObservabilitySettings
from tokenway.config.picker import PickerSettings
from tokenway.config.pools import PoolSpec
from tokenway.config.prices import Prices
from tokenway.config.processors import Processors
from tokenway.config.queues import Queues
from tokenway.config.slos import Slos
from tokenway.config.teams import Teams


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({name for name in names if name in seen or seen.add(name)})


class PlatformConfig(Section):
    """The root of the platform file (see examples/platform.yaml)."""

    gateway: GatewaySettings = GatewaySettings()
    pools: list[PoolSpec] = []
    models: list[ModelSpec] = []
    objectives: Objectives = []
    deployments: Deployments = []
    queues: Queues = []
    observability: ObservabilitySettings = ObservabilitySettings()
    slos: Slos = []
    teams: Teams = []
    prices: Prices = {}
    access: AccessSettings = AccessSettings()
    limits_store: LimitsStoreSettings = LimitsStoreSettings()
    processors: Processors = []
    picker: PickerSettings = PickerSettings()

    @model_validator(mode="after")
    def _references(self) -> PlatformConfig:
        problems = []
        if dup := _duplicates([p.name for p in self.pools]):
            problems.append(f"pools: duplicate names {dup}")
        if dup := _duplicates([m.name for m in self.models]):
            problems.append(f"models: duplicate names {dup}")
        if dup := _duplicates([o.name for o in self.objectives]):
            problems.append(f"objectives: duplicate names {dup}")
        if clash := sorted({o.name for o in self.objectives} & {m.name for m in self.models}):
            problems.append(f"objectives: names also used by models {clash}")
        pools = {p.name for p in self.pools}
        for model in self.models:
            if model.pool not in pools:
                problems.append(f"models: {model.name!r} names unknown pool {model.pool!r}")
        problems += identity_problems(self.teams, self.access)
        problems += self._picker_outlasts_queues()
        problems += self._one_engine_per_endpoint()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _picker_outlasts_queues(self) -> list[str]:
        """Envoy stops waiting for the picker after messageTimeout: FailOpen then forwards the
        request unchecked, FailClose answers 504. A request may wait in a flow-control queue
        for up to queueTtl, so the timeout has to be the longer of the two."""
        timeout = self.picker.message_timeout
        return [
            f"picker: messageTimeout ({timeout:g}s) must be longer than pools[{i}] "
            f"({pool.name!r}) flowControl.queueTtl ({pool.flow_control.queue_ttl:g}s), or Envoy "
            "gives up on requests that are still queued"
            for i, pool in enumerate(self.pools)
            if pool.flow_control.enabled and pool.flow_control.queue_ttl >= timeout
        ]

    def _one_engine_per_endpoint(self) -> list[str]:
        """An endpoint's metrics are read one way: pools sharing it must agree on its engine."""
        engines: dict[str, tuple[str, str]] = {}
        problems = []
        for pool in self.pools:
            for url in pool.endpoints:
                first = engines.setdefault(url, (pool.name, pool.engine))
                if first[1] != pool.engine:
                    problems.append(
                        f"pools: {url} is a {first[1]} endpoint in pool {first[0]!r} and a "
                        f"{pool.engine} endpoint in pool {pool.name!r}"
                    )
        return problems

    def pool(self, name: str) -> PoolSpec:
        return next(p for p in self.pools if p.name == name)
