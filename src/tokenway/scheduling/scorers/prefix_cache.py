"""`prefix-cache` scorer: prefer endpoints that probably hold the prompt's prefix in KV cache.

Reference algorithm: score = consecutive leading blocks the endpoint holds / blocks in the
prompt, from an index updated with the chosen endpoint after every decision (see
`prefix_index`). A prefix hit skips its prefill, the largest share of TTFT for long prompts.

The reference index never sees real evictions: it keeps routing to a replica for a prefix the
server dropped long ago. With `learn: true` the index learns each endpoint's real capacity:
it starts from the server's reported KV size (num_blocks x block_size) when known, and the
`cached_tokens` the server reports for each finished request correct it (AIMD: a predicted
hit that missed while the index was nearly full shrinks that endpoint's index by `shrink`; a
confirmed hit grows it again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
_PENDING_LIMIT = 100_000


class PrefixCacheParams(Section):
    block_size_tokens: int = Field(default=16, ge=1)
    max_prefix_blocks: int = Field(default=256, ge=1)
    lru_capacity_per_server: int = Field(default=31_250, ge=1)
    learn: bool = False
    shrink: float = Field(default=0.7, gt=0, lt=1)


@dataclass(frozen=True, slots=True)
class _Prediction:
    url: str
    matched: int
    blocks: int
    prompt_chars: int


class PrefixCacheScorer:
    type_name = TYPE

    def __init__(self, params: PrefixCacheParams) -> None:
        self.params = params
        self._params = params
        self._block_chars = params.block_size_tokens * _CHARS_PER_TOKEN
        self.index = PrefixIndex(params.lru_capacity_per_server)
        self._last: tuple[SchedulingRequest, list[int], dict[str, int]] | None = None
        self._pending: OrderedDict[str, _Prediction] = OrderedDict()
        self._ceiling: dict[str, int] = {}

    def _hashes(self, request: SchedulingRequest) -> list[int]:
        if self._last is not None and self._last[0] is request:
            return self._last[1]
        model = request.base_model or request.model
        hashes = block_hashes(
            model, request.prompt, self._block_chars, self._params.max_prefix_blocks
        )
        self._last = (request, hashes, {})
        return hashes

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        hashes = self._hashes(request)
        if not hashes:
            return [0.0] * len(endpoints)
        matched = self.index.match(hashes, [e.url for e in endpoints])
        assert self._last is not None
        self._last[2].update(matched)
        total = len(hashes)
        return [matched.get(e.url, 0) / total for e in endpoints]

    def picked(self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float) -> None:
        hashes = self._hashes(request)
        if not hashes:
            return
        assert self._last is not None
        if self._params.learn:
            self._learn_ceiling(endpoint)
            self._pending[request.request_id] = _Prediction(
                endpoint.url, self._last[2].get(endpoint.url, 0), len(hashes), len(request.prompt)
            )
            if len(self._pending) > _PENDING_LIMIT:
                self._pending.popitem(last=False)
        self.index.insert(endpoint.url, hashes)

    def observe(self, outcome: Outcome) -> None:
        if not self._params.learn:
            return
        prediction = self._pending.pop(outcome.request.request_id, None)
        if prediction is None or outcome.cached_tokens is None or outcome.prompt_tokens <= 0:
            return
        if not outcome.ok:
            return
        cached_chars = outcome.cached_tokens / outcome.prompt_tokens * prediction.prompt_chars
        actual = min(prediction.blocks, int(cached_chars // self._block_chars))
        # The server caches whole token blocks and our characters only estimate tokens, so a
        # block or two short of the prediction is rounding, not an eviction.
        tolerance = 1 + prediction.blocks // 16
        url = prediction.url
        held = min(self.index.size(url), self.index.capacity(url))
        if actual + tolerance < prediction.matched:
            # Only a full index can have outgrown the server's cache; a miss while it is
            # mostly empty is a race (the prefix was still being computed), not an eviction.
            if held >= self._params.shrink * self.index.capacity(url):
                self.index.set_capacity(url, int(held * self._params.shrink))
        elif prediction.matched > 0:
            ceiling = self._ceiling.get(url, self._params.lru_capacity_per_server)
            grown = self.index.capacity(url) + prediction.blocks
            self.index.set_capacity(url, min(ceiling, grown))

    def _learn_ceiling(self, endpoint: EndpointSnapshot) -> None:
        metrics = endpoint.metrics
        if endpoint.url in self._ceiling or not metrics.num_blocks or not metrics.block_size:
            return
        tokens = metrics.num_blocks * metrics.block_size
        ceiling = max(1, tokens * _CHARS_PER_TOKEN // self._block_chars)
        self._ceiling[endpoint.url] = ceiling
        self.index.set_capacity(endpoint.url, min(ceiling, self.index.capacity(endpoint.url)))


def build(params: Mapping[str, Any] | None) -> PrefixCacheScorer:
    return PrefixCacheScorer(parse_params(TYPE, PrefixCacheParams, params))
