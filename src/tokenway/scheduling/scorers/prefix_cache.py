"""`prefix-cache` scorer: prefer endpoints that probably hold the prompt's prefix in KV cache.

Reference algorithm: score = consecutive leading blocks the endpoint holds / blocks in the
prompt, from an index updated with the chosen endpoint after every decision (see
`prefix_index`). A prefix hit skips its prefill, the largest share of TTFT for long prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from tokenway.config.base import Section
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import parse_params
from tokenway.scheduling.prefix_index import PrefixIndex, block_hashes
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome

TYPE = "prefix-cache"
_CHARS_PER_TOKEN = 4
FORGET_AFTER_S = 600.0
"""An endpoint offered to no decision for this long is forgotten: pods replaced in a rolling
restart come back under new addresses, and each old one would keep up to a full LRU of blocks."""
_SWEEP_EVERY_S = 60.0


class PrefixCacheParams(Section):
    block_size_tokens: int = Field(default=16, ge=1)
    max_prefix_blocks: int = Field(default=256, ge=1)
    lru_capacity_per_server: int = Field(default=31_250, ge=1)


class PrefixCacheScorer:
    type_name = TYPE

    def __init__(self, params: PrefixCacheParams) -> None:
        self.params = params
        self._block_chars = params.block_size_tokens * _CHARS_PER_TOKEN
        self.index = PrefixIndex(params.lru_capacity_per_server)
        self._hashed: tuple[SchedulingRequest, list[int]] | None = None
        self._scored: tuple[SchedulingRequest, Sequence[EndpointSnapshot], list[float]] | None = (
            None
        )
        self._seen: dict[str, float] = {}
        """When each endpoint was last among a decision's candidates."""
        self._next_sweep = float("-inf")

    def _hashes(self, request: SchedulingRequest) -> list[int]:
        if self._hashed is not None and self._hashed[0] is request:
            return self._hashed[1]
        # The served model: an adapter's name for LoRA requests, since vLLM keys cached blocks
        # by adapter and a base-model prefix is of no use to them (nor theirs to each other).
        model = request.model
        hashes = block_hashes(
            model, request.prompt, self._block_chars, self.params.max_prefix_blocks
        )
        self._hashed = (request, hashes)
        return hashes

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        memo = self._scored
        if memo is not None and memo[0] is request and memo[1] is endpoints:
            # The prefill-cost scorer shares this index and asks again in the same decision.
            return memo[2]
        self._remember(endpoints, now)
        hashes = self._hashes(request)
        if not hashes:
            scores = [0.0] * len(endpoints)
        else:
            matched = self.index.match(hashes, [e.url for e in endpoints])
            total = len(hashes)
            scores = [matched.get(e.url, 0) / total for e in endpoints]
        self._scored = (request, endpoints, scores)
        return scores

    def _remember(self, endpoints: Sequence[EndpointSnapshot], now: float) -> None:
        self._seen.update(dict.fromkeys([e.url for e in endpoints], now))
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        for url, seen in list(self._seen.items()):
            if now - seen > FORGET_AFTER_S:
                self.index.forget(url)
                del self._seen[url]

    def picked(self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float) -> None:
        hashes = self._hashes(request)
        if hashes:
            self.index.insert(endpoint.url, hashes)

    def observe(self, outcome: Outcome) -> None:
        """Nothing: like the reference, the index trusts its routing history (see
        docs/scheduling.md for why learning evictions from cached_tokens was dropped)."""


def build(params: Mapping[str, Any] | None) -> PrefixCacheScorer:
    return PrefixCacheScorer(parse_params(TYPE, PrefixCacheParams, params))
