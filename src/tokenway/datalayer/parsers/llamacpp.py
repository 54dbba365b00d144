"""llama.cpp server's /metrics (`--metrics`): unlabelled series, no KV utilisation gauge.

Current builds publish no KV usage, so it reads as 0 and KV-aware scorers see no difference
between llama.cpp endpoints; builds before the KV-cache rework published
`llamacpp:kv_cache_usage_ratio`, which is used when present. `prompt_tokens_total` counts the
tokens the server evaluated, which excludes those served from its cache, so the prefix-cache
queries are evaluated plus cached tokens.
"""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.exposition import ExpositionReader, mean, total
from tokenway.datalayer.parsers.base import require

WAITING = "llamacpp:requests_deferred"
RUNNING = "llamacpp:requests_processing"
KV_USAGE = "llamacpp:kv_cache_usage_ratio"
PROMPT_TOKENS = "llamacpp:prompt_tokens_total"
CACHED_TOKENS = "llamacpp:prompt_tokens_cached_total"


class LlamacppParser:
    """Reads llama.cpp's processing and deferred request counts and its prompt-cache counters."""

    engine = "llamacpp"
    metrics_path: str | None = "/metrics"

    def __init__(self) -> None:
        self._reader = ExpositionReader((WAITING, RUNNING, KV_USAGE, PROMPT_TOKENS, CACHED_TOKENS))

    def parse(self, text: str) -> EndpointMetrics:
        found = self._reader.read(text)
        require(found, self.engine, WAITING, RUNNING)
        cached = total(found.get(CACHED_TOKENS, []))
        return EndpointMetrics(
            waiting=round(total(found[WAITING])),
            running=round(total(found[RUNNING])),
            kv_usage=mean(found.get(KV_USAGE, [])),
            prefix_cache_queries=total(found.get(PROMPT_TOKENS, [])) + cached,
            prefix_cache_hits=cached,
        )
