"""`prefill-cost` scorer: prefer the endpoint that can start this request's first token soonest.

The reference weighs prefix affinity against scraped queue length and KV usage, which lag by a
scrape and say nothing about how much prompt work is queued: in a burst of new tenants every
cold 6k-token prompt lands on whichever replica looked idle 50 ms ago. This scorer estimates,
per endpoint, the prefill work ahead of the request plus its own uncached part:

    cost = backlog(endpoint) + prompt_tokens * (1 - prefix match on endpoint)

where backlog is the uncached prompt tokens this scheduler sent there, drained at
`prefillTokensPerSecond`. Score (max - cost) / (max - min), all equal -> 1. The prefix match
comes from an approximate prefix index with the prefix-cache scorer's parameters, so a cached
replica wins until its backlog outweighs the cache saving: prefix affinity with a built-in,
fresh load guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.normalise import inverted_min_max
from tokenway.scheduling.params import parse_params
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.scheduling.scorers.prefix_cache import PrefixCacheParams, PrefixCacheScorer

TYPE = "prefill-cost"


class PrefillCostParams(PrefixCacheParams):
    prefill_tokens_per_second: float = Field(default=30_000, gt=0)
    """One endpoint's prefill throughput; sets how fast the estimated backlog drains."""


class PrefillCostScorer:
    type_name = TYPE

    def __init__(self, params: PrefillCostParams) -> None:
        self._rate = params.prefill_tokens_per_second
        fields = set(PrefixCacheParams.model_fields)
        self.prefix = PrefixCacheScorer(
            PrefixCacheParams.model_validate(params.model_dump(include=fields))
        )
        self._owns_prefix = True
        self._backlog: dict[str, tuple[float, float]] = {}
        """url -> (tokens, as of time)."""
        self._uncached: dict[str, float] = {}

    def share_prefix(self, prefix: PrefixCacheScorer) -> bool:
        """Use the profile's prefix-cache scorer instead of a private index when their
        parameters agree: the two indexes would be identical, and hashing twice doubles the
        cost of a decision. That scorer then records picks itself (the framework calls it)."""
        if prefix.params != self.prefix.params:
            return False
        self.prefix = prefix
        self._owns_prefix = False
        return True

    def backlog(self, url: str, now: float) -> float:
        tokens, since = self._backlog.get(url, (0.0, now))
        return max(0.0, tokens - (now - since) * self._rate)

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        matches = self.prefix.score(request, endpoints, now)
        tokens = request.prompt_tokens
        self._uncached = {
            e.url: tokens * (1.0 - match) for e, match in zip(endpoints, matches, strict=True)
        }
        rate, backlog, idle = self._rate, self._backlog.get, (0.0, now)
        costs = []
        for endpoint in endpoints:
            queued, since = backlog(endpoint.url, idle)
            left = queued - (now - since) * rate
            costs.append((left if left > 0.0 else 0.0) + self._uncached[endpoint.url])
        return inverted_min_max(costs)

    def picked(self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float) -> None:
        added = self._uncached.get(endpoint.url, float(request.prompt_tokens))
        self._backlog[endpoint.url] = (self.backlog(endpoint.url, now) + added, now)
        if self._owns_prefix:
            self.prefix.picked(request, endpoint, now)

    def observe(self, outcome: Outcome) -> None:
        """Nothing: the backlog drains with time, not with completions (which come only at
        the end of decoding, long after the prefill)."""


def build(params: Mapping[str, Any] | None) -> PrefillCostScorer:
    return PrefillCostScorer(parse_params(TYPE, PrefillCostParams, params))
