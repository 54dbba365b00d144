"""Everything built from one platform file, swapped as a whole when the file changes."""

from __future__ import annotations

from dataclasses import dataclass

from tokenway.config.platform import PlatformConfig
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.gateway.router import ModelRouter
from tokenway.gateway.stages import (
    Admission,
    Authenticator,
    Authorizer,
    Limiter,
    ProcessorChain,
)
from tokenway.scheduling.scheduler import Scheduler


@dataclass(frozen=True, slots=True)
class Stages:
    """The optional policy stages; None means the platform file configures none."""

    authenticator: Authenticator | None = None
    authorizer: Authorizer | None = None
    limiter: Limiter | None = None
    processors: ProcessorChain | None = None


@dataclass(frozen=True, slots=True)
class PoolRuntime:
    spec: PoolSpec
    scheduler: Scheduler
    admission: Admission | None
    base_model: str | None
    """The served base model of the pool (the first non-adapter target routed to it)."""


@dataclass(frozen=True, slots=True)
class GatewayState:
    config: PlatformConfig
    router: ModelRouter
    pools: dict[str, PoolRuntime]
    stages: Stages
    registry: EndpointRegistry
    """Shared by every state: endpoint health and metrics outlive configuration changes."""

    def base_model(self, pool: str) -> str | None:
        return self.pools[pool].base_model
