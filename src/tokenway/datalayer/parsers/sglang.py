"""SGLang's /metrics (`--enable-metrics`).

Series carry `model_name` and, on newer releases, per-rank labels; counts add up across series,
`token_usage` (fraction of KV tokens in use) is averaged. A freshly started server may not have
published its gauges yet, so absent series read as zero rather than failing the scrape: failing
it would keep the endpoint unready, and an unready endpoint never gets the traffic that makes
the gauges appear.
"""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.exposition import ExpositionReader, mean, total
from tokenway.datalayer.parsers.labels import int_label, summed_int_label

WAITING = "sglang:num_queue_reqs"
RUNNING = "sglang:num_running_reqs"
KV_USAGE = "sglang:token_usage"
CACHE_CONFIG = "sglang:cache_config_info"
PROMPT_TOKENS = "sglang:prompt_tokens_total"
CACHED_TOKENS = "sglang:cached_tokens_total"


class SglangParser:
    """Reads SGLang's queue, running, token-usage, page-config and cached-token series."""

    engine = "sglang"
    metrics_path: str | None = "/metrics"

    def __init__(self) -> None:
        self._reader = ExpositionReader(
            (WAITING, RUNNING, KV_USAGE, CACHE_CONFIG, PROMPT_TOKENS, CACHED_TOKENS)
        )

    def parse(self, text: str) -> EndpointMetrics:
        found = self._reader.read(text)
        cache = found.get(CACHE_CONFIG, [])
        return EndpointMetrics(
            waiting=round(total(found.get(WAITING, []))),
            running=round(total(found.get(RUNNING, []))),
            kv_usage=mean(found.get(KV_USAGE, [])),
            block_size=int_label(cache, "page_size"),
            num_blocks=summed_int_label(cache, "num_pages"),
            prefix_cache_queries=total(found.get(PROMPT_TOKENS, [])),
            prefix_cache_hits=total(found.get(CACHED_TOKENS, [])),
        )
