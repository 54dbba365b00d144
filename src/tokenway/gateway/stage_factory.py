"""Builds the policy stages (identity, access, limits, processors) from a platform file."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from tokenway.admission.limits.factory import build_limiter
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.auth.factory import build_authenticator, build_authorizer
from tokenway.auth.metrics import AuthenticationMetrics, AuthorizationMetrics
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.state import Stages
from tokenway.processing.factory import build_chain
from tokenway.processing.metrics import ProcessorMetrics


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """Created once per gateway: a registry refuses the same series twice, reloads reuse these."""

    authentication: AuthenticationMetrics
    authorization: AuthorizationMetrics
    usage: UsageMetrics
    processors: ProcessorMetrics

    @classmethod
    def on(cls, registry: CollectorRegistry) -> StageMetrics:
        return cls(
            AuthenticationMetrics(registry),
            AuthorizationMetrics(registry),
            UsageMetrics(registry),
            ProcessorMetrics(registry),
        )


def build_stages(
    config: PlatformConfig,
    metrics: StageMetrics,
    previous: tuple[PlatformConfig, Stages] | None = None,
) -> Stages:
    """Raises PolicyError (bad Rego) before anything is swapped in.

    A reload with the same `limitsStore` keeps the store, so counts and in-flight reservations
    carry over (the memory store would otherwise start from zero).
    """
    store = None
    old = previous[1].limiter if previous is not None else None
    if old is not None and previous is not None and previous[0].limits_store == config.limits_store:
        store = old.store
    limiter = build_limiter(config, time.time, metrics.usage, store=store) if config.teams else None
    return Stages(
        authenticator=build_authenticator(config, metrics.authentication),
        authorizer=build_authorizer(config, metrics.authorization),
        limiter=limiter,
        processors=build_chain(config, metrics.processors) if config.processors else None,
    )
