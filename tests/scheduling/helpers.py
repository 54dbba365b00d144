"""Endpoints built from plain values, for table-driven scheduling tests."""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot
from tokenway.scheduling.request import SchedulingRequest


def endpoint(
    n: int,
    *,
    waiting: int = 0,
    kv: float = 0.0,
    in_flight: int = 0,
    in_flight_tokens: int = 0,
    healthy: bool = True,
    served: frozenset[str] = frozenset(),
    max_loras: int = 0,
    running_loras: frozenset[str] = frozenset(),
    waiting_loras: frozenset[str] = frozenset(),
    age: float | None = 0.01,
    num_blocks: int | None = None,
    block_size: int | None = None,
) -> EndpointSnapshot:
    metrics = EndpointMetrics(
        waiting=waiting,
        kv_usage=kv,
        max_loras=max_loras,
        running_loras=running_loras,
        waiting_loras=waiting_loras,
        num_blocks=num_blocks,
        block_size=block_size,
        scraped_at=0.0 if age is not None else None,
    )
    return EndpointSnapshot(
        url=f"http://10.0.0.{n}:8000",
        pool="p",
        metrics=metrics,
        metrics_age=age,
        healthy=healthy,
        in_flight=in_flight,
        in_flight_tokens=in_flight_tokens,
        served_models=served,
    )


def request(
    prompt: str = "",
    *,
    request_id: str = "r",
    model: str = "base",
    adapter: str | None = None,
    session_id: str | None = None,
    subset: frozenset[str] | None = None,
) -> SchedulingRequest:
    return SchedulingRequest(
        request_id=request_id,
        model=adapter or model,
        base_model=model,
        adapter=adapter,
        prompt=prompt,
        prompt_tokens=len(prompt) // 4,
        session_id=session_id,
        subset=subset,
    )
