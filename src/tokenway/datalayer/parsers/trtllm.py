"""TensorRT-LLM's `trtllm-serve` metrics, served at /prometheus/metrics (its /metrics is JSON).

Series carry `model_name` and `engine_type`. Block size and count are plain gauges here, not
labels. Iteration gauges appear only once the engine has run an iteration, so absent series
read as zero rather than failing the scrape (see the SGLang parser for why that matters).
"""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.exposition import ExpositionReader, Sample, mean, total

WAITING = "trtllm_num_requests_waiting"
RUNNING = "trtllm_num_requests_running"
KV_USAGE = "trtllm_kv_cache_utilization"
TOKENS_PER_BLOCK = "trtllm_kv_cache_tokens_per_block"
MAX_BLOCKS = "trtllm_kv_cache_max_blocks"
PROMPT_TOKENS = "trtllm_prompt_tokens_total"
CACHED_TOKENS = "trtllm_prompt_cached_tokens_total"


class TrtllmParser:
    """Reads trtllm-serve's queue, running, KV utilisation, block and cached-token series."""

    engine = "trtllm"
    metrics_path: str | None = "/prometheus/metrics"

    def __init__(self) -> None:
        self._reader = ExpositionReader(
            (
                WAITING,
                RUNNING,
                KV_USAGE,
                TOKENS_PER_BLOCK,
                MAX_BLOCKS,
                PROMPT_TOKENS,
                CACHED_TOKENS,
            )
        )

    def parse(self, text: str) -> EndpointMetrics:
        found = self._reader.read(text)
        return EndpointMetrics(
            waiting=round(total(found.get(WAITING, []))),
            running=round(total(found.get(RUNNING, []))),
            kv_usage=mean(found.get(KV_USAGE, [])),
            block_size=_gauge(found.get(TOKENS_PER_BLOCK)),
            num_blocks=_gauge(found.get(MAX_BLOCKS)),
            prefix_cache_queries=total(found.get(PROMPT_TOKENS, [])),
            prefix_cache_hits=total(found.get(CACHED_TOKENS, [])),
        )


def _gauge(samples: list[Sample] | None) -> int | None:
    return round(samples[0].value) if samples else None
