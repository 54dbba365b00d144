"""Usage series per team and model: tokens by type, cost, limit rejections by reason."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from tokenway.gateway.context import Usage


class UsageMetrics:
    __slots__ = ("_cost", "_rejections", "_store", "_token_children", "_tokens")

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._tokens = Counter(
            "tokenway_team_tokens",
            "Tokens charged to a team, by model and type (input, output, cached_input).",
            ["team", "model", "type"],
            registry=registry,
        )
        self._token_children: dict[tuple[str, str], tuple[Counter, ...]] = {}
        self._cost = Counter(
            "tokenway_team_cost",
            "Spend charged to a team, by model and currency, from the price table.",
            ["team", "model", "currency"],
            registry=registry,
        )
        self._rejections = Counter(
            "tokenway_limit_rejections",
            "Requests refused by limits, by team, model and reason.",
            ["team", "model", "reason"],
            registry=registry,
        )
        self._store = Counter(
            "tokenway_limits_store_unavailable",
            "Limit store operations that failed, by operation and the outcome applied.",
            ["operation", "outcome"],
            registry=registry,
        )

    def charged(self, team: str, model: str, usage: Usage, cost: float, currency: str) -> None:
        children = self._token_children.get((team, model))
        if children is None:
            # labels() costs more than the increments; settle runs on every request.
            children = tuple(
                self._tokens.labels(team, model, kind)
                for kind in ("input", "output", "cached_input")
            )
            self._token_children[(team, model)] = children
        children[0].inc(usage.prompt_tokens)
        children[1].inc(usage.completion_tokens)
        if usage.cached_tokens:
            children[2].inc(usage.cached_tokens)
        if cost:
            self._cost.labels(team, model, currency).inc(cost)

    def rejected(self, team: str, model: str, reason: str) -> None:
        self._rejections.labels(team, model, reason).inc()

    def store_unavailable(self, operation: str, outcome: str) -> None:
        self._store.labels(operation, outcome).inc()
