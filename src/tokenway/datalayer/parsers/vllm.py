"""vLLM's /metrics: current V1 names, with the deprecated ones read when the current are absent.

Series carry `model_name` and, on V1, `engine` (one per data-parallel engine). Queue and running
counts add up across series; KV utilisation is their mean (data-parallel engines have equal
caches, so the mean is used blocks over total blocks); cache blocks add up across engines.
"""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.exposition import ExpositionReader, Sample, mean, total
from tokenway.datalayer.parsers.base import require
from tokenway.datalayer.parsers.labels import int_label, label_set, summed_int_label

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_USAGE = "vllm:kv_cache_usage_perc"
KV_USAGE_DEPRECATED = "vllm:gpu_cache_usage_perc"
PREFIX_QUERIES = "vllm:prefix_cache_queries_total"
PREFIX_HITS = "vllm:prefix_cache_hits_total"
PREFIX_QUERIES_DEPRECATED = "vllm:gpu_prefix_cache_queries_total"
PREFIX_HITS_DEPRECATED = "vllm:gpu_prefix_cache_hits_total"
CACHE_CONFIG = "vllm:cache_config_info"
LORA = "vllm:lora_requests_info"


class VllmParser:
    """Reads vLLM's queue, running, KV, prefix-cache, cache-config and LoRA series."""

    engine = "vllm"
    metrics_path: str | None = "/metrics"

    def __init__(self) -> None:
        self._reader = ExpositionReader(
            (
                WAITING,
                RUNNING,
                KV_USAGE,
                KV_USAGE_DEPRECATED,
                PREFIX_QUERIES,
                PREFIX_HITS,
                PREFIX_QUERIES_DEPRECATED,
                PREFIX_HITS_DEPRECATED,
                CACHE_CONFIG,
                LORA,
            )
        )

    def parse(self, text: str) -> EndpointMetrics:
        found = self._reader.read(text)
        require(found, self.engine, WAITING, RUNNING)
        cache = found.get(CACHE_CONFIG, [])
        lora = _newest(found.get(LORA, []))
        return EndpointMetrics(
            waiting=round(total(found[WAITING])),
            running=round(total(found[RUNNING])),
            kv_usage=mean(_first(found, KV_USAGE, KV_USAGE_DEPRECATED)),
            block_size=int_label(cache, "block_size"),
            num_blocks=summed_int_label(cache, "num_gpu_blocks"),
            max_loras=(int_label([lora], "max_lora") or 0) if lora else 0,
            running_loras=label_set(lora, "running_lora_adapters"),
            waiting_loras=label_set(lora, "waiting_lora_adapters"),
            prefix_cache_queries=total(_first(found, PREFIX_QUERIES, PREFIX_QUERIES_DEPRECATED)),
            prefix_cache_hits=total(_first(found, PREFIX_HITS, PREFIX_HITS_DEPRECATED)),
        )


def _first(found: dict[str, list[Sample]], *names: str) -> list[Sample]:
    """The samples of the first name present: the current name wins over the deprecated one."""
    for name in names:
        if name in found:
            return found[name]
    return []


def _newest(samples: list[Sample]) -> Sample | None:
    """vLLM keeps one lora_requests_info series per label combination ever seen, each valued
    with the time it was last set; only the newest describes the present."""
    return max(samples, key=lambda sample: sample.value, default=None)
