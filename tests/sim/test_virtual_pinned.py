"""Pins the per-request results of small virtual runs, so speed work cannot change semantics.

The scenarios cover what the fast paths touch: shared-prefix hits (including cached blocks
revived from the free queue), LoRA slots, routing on scraped metrics and in-flight counts,
gateway-side queueing, and a KV cache small enough to preempt. The expected values in
data/virtual_pinned.json were recorded from the step-by-step engine; `pinned_results()`
regenerates them.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tokenway.bench.workload import WorkloadRequest
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.request import Decision, SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.sim.gateway_view import Admit
from tokenway.sim.virtual import VirtualConfig, VirtualResult, run_virtual

PINNED = Path(__file__).parent / "data" / "virtual_pinned.json"


class LeastLoaded:
    """Routes on the scraped metrics and in-flight counts, so they shape every result."""

    def __init__(self) -> None:
        self.seen: list[list[float]] = []

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        for e in endpoints:
            m = e.metrics
            self.seen.append([m.waiting, m.running, m.kv_usage, m.prefix_cache_hits, e.in_flight])
        ranked = sorted(
            endpoints,
            key=lambda e: (
                e.metrics.waiting + e.metrics.running + e.in_flight,
                e.metrics.kv_usage,
                e.url,
            ),
        )
        return Decision(tuple(ranked))

    def observe(self, outcome: Outcome) -> None:
        return None


def _shared_prefix_workload() -> list[WorkloadRequest]:
    rng = random.Random(3)
    systems = [f"system prompt {g} " * 40 for g in range(3)]
    out: list[WorkloadRequest] = []
    t = 0.0
    for i in range(120):
        t += rng.expovariate(25.0)
        group = rng.randrange(3)
        model = ("a", "b", "")[i % 3] if i % 4 == 0 else ""
        out.append(
            WorkloadRequest(
                arrival=t,
                messages=(
                    {"role": "system", "content": systems[group]},
                    {"role": "user", "content": f"question {i} " * rng.randint(5, 60)},
                ),
                max_tokens=rng.randint(1, 120),
                model=model,
                priority=-1 if i % 7 == 6 else 0,
            )
        )
    return out


def _pressure_workload() -> list[WorkloadRequest]:
    rng = random.Random(5)
    out: list[WorkloadRequest] = []
    t = 0.0
    for i in range(60):
        t += rng.expovariate(30.0)
        text = f"long {i} " + "pressure prompt words " * rng.randint(150, 250)
        out.append(WorkloadRequest(arrival=t, prompt=text, max_tokens=rng.randint(200, 400)))
    return out


def _hold_busy(
    request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float, waited: float
) -> Admit:
    if request.priority < 0 and waited == 0.0:
        return Admit.QUEUE
    return Admit.ADMIT


def _record(result: VirtualResult, scheduler: LeastLoaded) -> dict[str, Any]:
    return {
        "requests": [
            [
                r.endpoint,
                r.status,
                r.prompt_tokens,
                r.cached_tokens,
                r.output_tokens,
                r.preemptions,
                r.gateway_wait,
                r.queue_time,
                r.ttft,
                None if math.isnan(r.itl) else r.itl,
                r.e2e,
            ]
            for r in result.requests
        ],
        "series": [[s.time, *s.running, *s.waiting, *s.kv_usage] for s in result.series],
        "seen": scheduler.seen,
        "steps": result.steps,
        "simulated_seconds": result.simulated_seconds,
    }


def pinned_results() -> dict[str, Any]:
    shared = LeastLoaded()
    pressure = LeastLoaded()
    return {
        "shared_prefix_lora": _record(
            run_virtual(
                _shared_prefix_workload(),
                shared,
                VirtualConfig(replicas=3, loras=("a", "b"), max_loras=1, sample_interval=0.25),
                _hold_busy,
            ),
            shared,
        ),
        "kv_pressure": _record(
            run_virtual(
                _pressure_workload(),
                pressure,
                VirtualConfig(replicas=2, profile="l4-8b", sample_interval=0.25),
            ),
            pressure,
        ),
    }


def _approx(value: Any) -> Any:
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-12, abs=1e-12)
    if isinstance(value, list):
        return [_approx(v) for v in value]
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return json.loads(json.dumps(pinned_results()))


@pytest.mark.parametrize("scenario", ["shared_prefix_lora", "kv_pressure"])
def test_virtual_results_match_the_pinned_run(results: dict[str, Any], scenario: str) -> None:
    expected = json.loads(PINNED.read_text())[scenario]
    got = results[scenario]
    assert got["steps"] == expected["steps"]
    for i, (g, e) in enumerate(zip(got["requests"], expected["requests"], strict=True)):
        assert g == _approx(e), f"request {i}"
    assert got["series"] == _approx(expected["series"])
    assert got["seen"] == _approx(expected["seen"])
    assert got["simulated_seconds"] == pytest.approx(expected["simulated_seconds"], rel=1e-12)


def test_scenarios_exercise_hits_revivals_lora_and_preemption(results: dict[str, Any]) -> None:
    shared = results["shared_prefix_lora"]["requests"]
    pressure = results["kv_pressure"]["requests"]
    assert sum(r[3] for r in shared) > 10_000, "prefix hits"
    assert {r[1] for r in shared} == {"ok"}
    assert any(r[6] > 0 for r in shared), "held at the gateway"
    assert sum(r[5] for r in pressure) > 0, "preemptions"
