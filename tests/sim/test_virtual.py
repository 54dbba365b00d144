"""The virtual-time runner and its seam: snapshots, observe(), admission."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tokenway.bench.workload import WorkloadRequest
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.request import Decision, SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.sim.gateway_view import Admit
from tokenway.sim.virtual import VirtualConfig, run_virtual


class RoundRobin:
    """The smallest possible Scheduler: rotate the primary, remember what it was shown."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[tuple[float, tuple[EndpointSnapshot, ...]]] = []
        self.outcomes: list[Outcome] = []

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        self.seen.append((now, tuple(endpoints)))
        k = self.count % len(endpoints)
        self.count += 1
        return Decision(tuple(endpoints[k:]) + tuple(endpoints[:k]))

    def observe(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


class FirstOnly(RoundRobin):
    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        return Decision(tuple(endpoints))


def _workload(n: int, rate: float, prompt_words: int = 200, out: int = 50) -> list[WorkloadRequest]:
    return [
        WorkloadRequest(
            arrival=i / rate,
            prompt=f"request {i} " + "lorem ipsum dolor " * prompt_words,
            max_tokens=out,
            priority=-1 if i % 5 == 4 else 0,
        )
        for i in range(n)
    ]


def test_every_request_completes_with_consistent_timings() -> None:
    scheduler = RoundRobin()
    result = run_virtual(_workload(60, 20.0), scheduler, VirtualConfig(replicas=3))
    assert [r.status for r in result.requests] == ["ok"] * 60
    for r in result.requests:
        assert 0 < r.ttft <= r.e2e and r.output_tokens == 50 and r.itl > 0
        assert r.queue_time >= 0
    per_replica = {r.endpoint for r in result.requests}
    assert len(per_replica) == 3
    assert result.series and len(result.series[0].running) == 3
    assert result.simulated_seconds >= 59 / 20.0
    assert result.summary()["completed"] == 60


def test_scheduler_sees_scraped_metrics_and_gateway_in_flight_counts() -> None:
    scheduler = RoundRobin()
    config = VirtualConfig(replicas=2, scrape_interval=0.2)
    run_virtual(_workload(40, 40.0), scheduler, config)
    ages = [s.metrics_age for now, snaps in scheduler.seen for s in snaps if now >= 0.2]
    assert ages and all(age is not None and 0 <= age <= 0.2 + 1e-9 for age in ages)
    assert scheduler.seen[0][1][1].metrics_age is None, "replica 1 is scraped first at 0.1 s"
    assert max(s.metrics.running for _, snaps in scheduler.seen for s in snaps) > 0
    assert max(s.in_flight for _, snaps in scheduler.seen for s in snaps) > 1
    assert {s.url for s in scheduler.seen[0][1]} == {
        "http://sim-0.sim:8000",
        "http://sim-1.sim:8000",
    }


def test_observe_reports_prefix_cache_hits() -> None:
    scheduler = FirstOnly()
    shared = "system prompt shared by all " * 60
    workload = [
        WorkloadRequest(arrival=i * 0.5, prompt=shared + f"question {i}", max_tokens=5)
        for i in range(4)
    ]
    run_virtual(workload, scheduler, VirtualConfig(replicas=2))
    cached = [o.cached_tokens for o in sorted(scheduler.outcomes, key=lambda o: o.now)]
    assert cached[0] == 0 and all(c is not None and c > 300 for c in cached[1:])
    assert all(o.endpoint_url == "http://sim-0.sim:8000" for o in scheduler.outcomes)


def test_routing_changes_outcomes() -> None:
    workload = _workload(200, 60.0, out=100)
    spread = run_virtual(workload, RoundRobin(), VirtualConfig(replicas=4))
    piled = run_virtual(workload, FirstOnly(), VirtualConfig(replicas=4))
    assert spread.summary()["e2e_p90"] < piled.summary()["e2e_p90"]


def test_runs_are_deterministic() -> None:
    a = run_virtual(_workload(50, 30.0), RoundRobin(), VirtualConfig(replicas=2))
    b = run_virtual(_workload(50, 30.0), RoundRobin(), VirtualConfig(replicas=2))
    assert [(r.ttft, r.e2e, r.endpoint) for r in a.requests] == [
        (r.ttft, r.e2e, r.endpoint) for r in b.requests
    ]


def test_admission_hook_can_shed_and_hold() -> None:
    held: dict[str, int] = {}

    def admission(
        request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float, waited: float
    ) -> Admit:
        if request.priority < 0:
            return Admit.SHED
        if request.request_id == "req-0" and waited < 0.1:
            held[request.request_id] = held.get(request.request_id, 0) + 1
            return Admit.QUEUE
        return Admit.ADMIT

    config = VirtualConfig(replicas=2, scrape_interval=0.05)
    result = run_virtual(_workload(20, 10.0), RoundRobin(), config, admission)
    statuses = [r.status for r in result.requests]
    assert statuses.count("shed") == 4 and statuses.count("ok") == 16
    first = result.requests[0]
    assert held["req-0"] == 2 and math.isclose(first.gateway_wait, 0.1)
    assert first.ttft > first.gateway_wait
