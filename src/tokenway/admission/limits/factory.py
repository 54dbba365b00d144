"""Builds the limiter from the platform file: rules per team, the store, the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tokenway.admission.limits.limiter import Limiter
from tokenway.admission.limits.memory_store import MemoryStore
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.admission.limits.redis_store import RedisStore
from tokenway.admission.limits.rules import TeamLimits, compile_budget, compile_limit
from tokenway.admission.limits.store import LimitStore
from tokenway.config.platform import PlatformConfig

log = logging.getLogger(__name__)


def build_limiter(
    config: PlatformConfig,
    clock: Callable[[], float] = time.time,
    metrics: UsageMetrics | None = None,
    store: LimitStore | None = None,
) -> Limiter:
    """`clock` is wall-clock epoch seconds (windows are shared across replicas). With no teams
    nothing is limited, but usage is still counted in the metrics.

    `metrics` is created once per registry (`UsageMetrics(registry)`) and passed to every
    rebuild on reload; so can `store` (`limiter.store`) while `limitsStore` is unchanged, so
    that requests in flight settle into the same store. `close()` closes the store."""
    teams = {}
    for team in config.teams:
        rules = [compile_limit(spec) for spec in team.limits]
        if team.budget is not None:
            rules.append(compile_budget(team.budget, config.prices))
            if team.budget.amount is not None:
                _warn_unpriced(config, team.name)
        teams[team.name] = TeamLimits(
            tuple(rules),
            team.budget.currency if team.budget else "USD",
            tuple(k.label or k.sha256[:12] for k in team.identities.api_keys),
        )
    settings = config.limits_store
    if store is None:
        store = (
            MemoryStore()
            if settings.redis is None
            else RedisStore(settings.redis, settings.timeout)
        )
    return Limiter(teams, store, settings, config.prices, metrics or UsageMetrics(None), clock)


def _warn_unpriced(config: PlatformConfig, team: str) -> None:
    unpriced = sorted(m.name for m in config.models if m.name not in config.prices)
    if unpriced:
        log.warning("team %s has a money budget but models %s have no price", team, unpriced)
