"""The Prometheus text a vLLM V1 server exposes on /metrics, rendered from an engine's state."""

from __future__ import annotations

from collections.abc import Iterable

from tokenway.sim.engine import EngineCore
from tokenway.sim.stats import Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(pairs: Iterable[tuple[str, object]]) -> str:
    body = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + body + "}"


def _num(value: float) -> str:
    return repr(float(value))


class _Writer:
    def __init__(self, base: tuple[tuple[str, object], ...]) -> None:
        self.base = base
        self.lines: list[str] = []

    def header(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.header(name, "gauge", help_text)
        self.lines.append(f"{name}{_labels(self.base)} {_num(value)}")

    def counter(self, name: str, help_text: str, value: float) -> None:
        self.header(f"{name}_total", "counter", help_text)
        self.lines.append(f"{name}_total{_labels(self.base)} {_num(value)}")

    def histogram(self, name: str, help_text: str, hist: Histogram) -> None:
        self.header(name, "histogram", help_text)
        total = 0
        for bound, count in zip(hist.bounds, hist.counts, strict=False):
            total += count
            labels = _labels((*self.base, ("le", _num(bound))))
            self.lines.append(f"{name}_bucket{labels} {_num(total)}")
        total += hist.counts[-1]
        self.lines.append(f"{name}_bucket{_labels((*self.base, ('le', '+Inf')))} {_num(total)}")
        self.lines.append(f"{name}_count{_labels(self.base)} {_num(total)}")
        self.lines.append(f"{name}_sum{_labels(self.base)} {_num(hist.sum)}")


def render(engine: EngineCore, model_name: str, now: float, engine_index: int = 0) -> str:
    """vLLM V1 metric names, labels (model_name, engine) and buckets; `now` is a Unix time."""
    base: tuple[tuple[str, object], ...] = (("engine", engine_index), ("model_name", model_name))
    w = _Writer(base)
    s = engine.stats
    profile = engine.profile
    w.gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        len(engine.running),
    )
    w.gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        len(engine.waiting),
    )
    w.gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        engine.kv.pool.usage(),
    )
    w.header("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
    info = _labels(
        (
            ("block_size", profile.block_size),
            ("cache_dtype", "auto"),
            ("enable_prefix_caching", "True"),
            ("engine", engine_index),
            ("gpu_memory_utilization", profile.gpu_memory_utilization),
            ("num_cpu_blocks", "None"),
            ("num_gpu_blocks", engine.kv.pool.num_blocks),
        )
    )
    w.lines.append(f"vllm:cache_config_info{info} 1.0")
    if engine.loras.max_loras:
        waiting = sorted({r.lora for r in engine.waiting if r.lora is not None})
        w.header("vllm:lora_requests_info", "gauge", "Running stats on lora requests.")
        lora = _labels(
            (
                ("max_lora", engine.loras.max_loras),
                ("running_lora_adapters", ",".join(sorted(engine.loras.running))),
                ("waiting_lora_adapters", ",".join(waiting)),
            )
        )
        w.lines.append(f"vllm:lora_requests_info{lora} {_num(now)}")
    w.counter(
        "vllm:num_preemptions",
        "Cumulative number of preemption from the engine.",
        s.num_preemptions,
    )
    w.counter(
        "vllm:prefix_cache_queries",
        "Prefix cache queries, in terms of number of queried tokens.",
        s.prefix_cache_queries,
    )
    w.counter(
        "vllm:prefix_cache_hits",
        "Prefix cache hits, in terms of number of cached tokens.",
        s.prefix_cache_hits,
    )
    w.counter("vllm:prompt_tokens", "Number of prefill tokens processed.", s.prompt_tokens)
    w.counter(
        "vllm:generation_tokens", "Number of generation tokens processed.", s.generation_tokens
    )
    w.header("vllm:request_success_total", "counter", "Count of successfully processed requests.")
    for reason in ("stop", "length", "abort"):
        labels = _labels((*base, ("finished_reason", reason)))
        w.lines.append(f"vllm:request_success_total{labels} {_num(s.request_success[reason])}")
    for name, help_text, hist in (
        ("vllm:request_prompt_tokens", "Number of prefill tokens processed.", s.prompt_len),
        (
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            s.generation_len,
        ),
        (
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            s.max_tokens_param,
        ),
        (
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            s.ttft,
        ),
        ("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", s.itl),
        ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", s.e2e),
        (
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            s.queue,
        ),
        (
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            s.inference,
        ),
        (
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            s.prefill,
        ),
        (
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            s.decode,
        ),
    ):
        w.histogram(name, help_text, hist)
    return "\n".join(w.lines) + "\n"
