"""The seam between the virtual-time runner and the gateway's decision code.

Everything a decision sees is built here, the way the live gateway builds it: endpoint metrics
from a scrape of each engine (vLLM's Model Server Protocol signals, refreshed at a scrape
interval and stale in between), the gateway's own in-flight counts, and a `SchedulingRequest`
made from the workload request. The production `Scheduler` (tokenway.scheduling) and an
optional admission hook are called with exactly these values, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from tokenway.bench.workload import WorkloadRequest
from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot
from tokenway.scheduling.request import SchedulingRequest
from tokenway.sim import tokenizer
from tokenway.sim.engine import EngineCore


class Admit(Enum):
    ADMIT = "admit"
    SHED = "shed"
    """Reject now (the gateway would answer 429/503)."""
    QUEUE = "queue"
    """Hold at the gateway and ask again at the next scrape."""


AdmissionHook = Callable[[SchedulingRequest, Sequence[EndpointSnapshot], float, float], Admit]
"""(request, endpoints, now, seconds already held) -> what to do with the request."""


def scrape(engine: EngineCore, now: float) -> EndpointMetrics:
    """What a scrape of the engine's /metrics yields at `now`."""
    loras = engine.loras
    return EndpointMetrics(
        waiting=len(engine.waiting),
        running=len(engine.running),
        kv_usage=engine.kv.pool.usage(),
        block_size=engine.kv.block_size,
        num_blocks=engine.kv.pool.num_blocks,
        max_loras=loras.max_loras,
        running_loras=frozenset(loras.running),
        waiting_loras=frozenset(r.lora for r in engine.waiting if r.lora is not None),
        prefix_cache_queries=float(engine.stats.prefix_cache_queries),
        prefix_cache_hits=float(engine.stats.prefix_cache_hits),
        scraped_at=now,
    )


def snapshot(
    url: str,
    pool: str,
    metrics: EndpointMetrics,
    now: float,
    in_flight: int,
    in_flight_tokens: int,
    served_models: frozenset[str],
) -> EndpointSnapshot:
    age = None if metrics.scraped_at is None else now - metrics.scraped_at
    return EndpointSnapshot(
        url=url,
        pool=pool,
        metrics=metrics,
        metrics_age=age,
        in_flight=in_flight,
        in_flight_tokens=in_flight_tokens,
        served_models=served_models,
    )


def scheduling_request(
    index: int, work: WorkloadRequest, base_model: str, adapters: frozenset[str]
) -> SchedulingRequest:
    """The request as the gateway's parse stage would describe it."""
    model = work.model or base_model
    adapter = model if model in adapters else None
    text = tokenizer.render_chat(work.messages) if work.messages else work.prompt
    return SchedulingRequest(
        request_id=f"req-{index}",
        model=model,
        base_model=base_model,
        adapter=adapter,
        prompt=text,
        prompt_tokens=tokenizer.count(text),
        max_tokens=work.max_tokens,
        priority=work.priority,
        fairness_id=work.tenant,
        headers=work.headers,
    )
