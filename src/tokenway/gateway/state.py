"""Everything built from one platform file, swapped as a whole when the file changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenway.config.platform import PlatformConfig
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.gateway.router import ModelRouter
from tokenway.gateway.stages import Admission, Authorizer
from tokenway.scheduling.scheduler import Scheduler

if TYPE_CHECKING:
    from tokenway.admission.limits.limiter import Limiter
    from tokenway.auth.authenticator import Authenticator, OpenAuthenticator
    from tokenway.processing.chain import Chain


@dataclass(frozen=True, slots=True)
class Stages:
    """The policy stages of one configuration; processors is None when none are configured."""

    authenticator: Authenticator | OpenAuthenticator
    authorizer: Authorizer
    limiter: Limiter | None
    """None when no team is configured: nothing to limit or charge."""
    processors: Chain | None = None


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
    objectives: dict[str, int]
    """Objective name -> priority (the `objectives:` section)."""

    def base_model(self, pool: str) -> str | None:
        return self.pools[pool].base_model
