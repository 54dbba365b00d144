"""Virtual time: N simulated replicas and the gateway's scheduler over a workload, no sleeping.

A discrete-event loop over arrivals, engine step ends, per-replica scrapes and series samples.
Each request is routed at its arrival by the `Scheduler` over snapshots built in
`gateway_view` (metrics as of each replica's last scrape, plus in-flight counts), reaches the
engine after the profile's API overhead, and is fed back through `Scheduler.observe` with its
usage when it finishes. Engines jump over stretches of identical decode steps, and a new
arrival shortens the stretch of the replica it lands on, so the timeline matches single-stepping.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tokenway.bench.workload import WorkloadRequest
from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome, Scheduler
from tokenway.sim import tokenizer
from tokenway.sim.engine import EngineCore, StepPlan
from tokenway.sim.gateway_view import (
    AdmissionHook,
    Admit,
    scheduling_request,
    scrape,
    snapshot,
)
from tokenway.sim.profiles import DEFAULT_MODEL, DEFAULT_PROFILE, get_profile
from tokenway.sim.request import SimRequest

_ARRIVAL, _ENQUEUE, _STEP_END, _SCRAPE, _SAMPLE = range(5)


@dataclass(frozen=True, slots=True)
class VirtualConfig:
    replicas: int = 4
    profile: str = DEFAULT_PROFILE
    model: str = DEFAULT_MODEL
    loras: Sequence[str] = ()
    max_loras: int = 1
    scrape_interval: float = 0.05
    """Seconds between scrapes of one replica (staggered across replicas)."""
    sample_interval: float = 1.0
    """Seconds between points of the fleet series."""
    pool: str = "sim"
    max_steps_per_plan: int = 1 << 30
    """Identical decode steps an engine may cover at once; 1 is plain single stepping (the
    baseline the speed benchmark compares against). Results are the same either way."""


@dataclass(frozen=True, slots=True)
class RequestResult:
    index: int
    endpoint: str | None
    """The replica URL it ran on; None when it was shed or nothing could serve it."""
    arrival: float
    status: str
    """"ok", "shed" or "unroutable"."""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    gateway_wait: float = 0.0
    """Seconds held by the admission hook before routing."""
    queue_time: float = 0.0
    """Seconds in the engine's waiting queue before first scheduled."""
    ttft: float = math.nan
    itl: float = math.nan
    """Mean inter-token latency of this request."""
    e2e: float = math.nan
    preemptions: int = 0


@dataclass(frozen=True, slots=True)
class FleetSample:
    time: float
    running: tuple[int, ...]
    waiting: tuple[int, ...]
    kv_usage: tuple[float, ...]


@dataclass(slots=True)
class VirtualResult:
    requests: list[RequestResult]
    series: list[FleetSample]
    simulated_seconds: float
    wall_seconds: float
    cpu_seconds: float
    """CPU time of this process during the run: the cost on one core, whatever the load."""
    steps: int

    @property
    def speedup(self) -> float:
        """Simulated seconds per CPU second."""
        return self.simulated_seconds / self.cpu_seconds if self.cpu_seconds else math.inf

    def summary(self) -> dict[str, float]:
        ok = [r for r in self.requests if r.status == "ok"]
        out: dict[str, float] = {
            "requests": float(len(self.requests)),
            "completed": float(len(ok)),
            "shed": float(sum(r.status == "shed" for r in self.requests)),
            "simulated_seconds": self.simulated_seconds,
            "wall_seconds": self.wall_seconds,
            "cpu_seconds": self.cpu_seconds,
            "speedup": self.speedup,
            "engine_steps": float(self.steps),
        }
        if ok:
            prompt = sum(r.prompt_tokens for r in ok)
            out["prefix_hit_rate"] = sum(r.cached_tokens for r in ok) / prompt if prompt else 0.0
            out["output_tokens_per_s"] = sum(r.output_tokens for r in ok) / self.simulated_seconds
            for name in ("ttft", "itl", "e2e", "queue_time"):
                values = np.array([getattr(r, name) for r in ok], dtype=float)
                values = values[~np.isnan(values)]
                if values.size:
                    for q in (50, 90, 99):
                        out[f"{name}_p{q}"] = float(np.percentile(values, q))
        return out


@dataclass(slots=True)
class _Replica:
    url: str
    engine: EngineCore
    metrics: EndpointMetrics = field(default_factory=EndpointMetrics)
    plan: StepPlan | None = None
    version: int = 0
    in_flight: int = 0
    in_flight_tokens: int = 0


@dataclass(slots=True)
class _Pending:
    index: int
    work: WorkloadRequest
    request: SchedulingRequest
    replica: int = -1
    gateway_wait: float = 0.0
    sim: SimRequest | None = None


class VirtualRunner:
    """One run of a workload through a simulated fleet; create, then call `run()` once."""

    def __init__(
        self,
        config: VirtualConfig,
        scheduler: Scheduler,
        admission: AdmissionHook | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.admission = admission
        self.profile = get_profile(config.profile)
        self.replicas = [
            _Replica(
                f"http://sim-{i}.{config.pool}:8000", EngineCore(self.profile, config.max_loras)
            )
            for i in range(config.replicas)
        ]
        self.adapters = frozenset(config.loras)
        self.served = frozenset({config.model, *config.loras})
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        self._results: dict[int, RequestResult] = {}
        self._series: list[FleetSample] = []
        self._outstanding = 0
        self._owners: dict[str, _Pending] = {}

    def _push(self, at: float, kind: int, payload: object) -> None:
        heapq.heappush(self._events, (at, next(self._seq), kind, payload))

    def run(self, workload: Sequence[WorkloadRequest]) -> VirtualResult:
        wall, cpu = time.perf_counter(), time.process_time()
        for index, work in enumerate(workload):
            req = scheduling_request(index, work, self.config.model, self.adapters)
            self._push(work.arrival, _ARRIVAL, _Pending(index, work, req))
        self._outstanding = len(workload)
        n = len(self.replicas)
        for i in range(n):
            self._push(self.config.scrape_interval * i / n, _SCRAPE, i)
        self._push(0.0, _SAMPLE, None)
        now = 0.0
        handlers = (self._arrival, self._enqueue, self._step_end, self._scrape, self._sample)
        events = self._events
        while events and self._outstanding:
            now, _, kind, payload = heapq.heappop(events)
            handlers[kind](now, payload)
        steps = sum(r.engine.steps for r in self.replicas)
        results = [self._results[i] for i in range(len(workload))]
        return VirtualResult(
            results,
            self._series,
            simulated_seconds=now,
            wall_seconds=time.perf_counter() - wall,
            cpu_seconds=time.process_time() - cpu,
            steps=steps,
        )

    # -- gateway side -----------------------------------------------------------------------

    def _arrival(self, now: float, payload: object) -> None:
        pending = payload
        assert isinstance(pending, _Pending)
        snapshots = [
            snapshot(
                r.url,
                self.config.pool,
                r.metrics,
                now,
                r.in_flight,
                r.in_flight_tokens,
                self.served,
            )
            for r in self.replicas
        ]
        if self.admission is not None:
            verdict = self.admission(pending.request, snapshots, now, pending.gateway_wait)
            if verdict is Admit.SHED:
                self._finish_unserved(pending, "shed")
                return
            if verdict is Admit.QUEUE:
                pending.gateway_wait += self.config.scrape_interval
                self._push(now + self.config.scrape_interval, _ARRIVAL, pending)
                return
        decision = self.scheduler.schedule(pending.request, snapshots, now)
        primary = decision.primary
        if primary is None:
            self._finish_unserved(pending, "unroutable")
            return
        index = next(i for i, r in enumerate(self.replicas) if r.url == primary.url)
        replica = self.replicas[index]
        pending.replica = index
        replica.in_flight += 1
        replica.in_flight_tokens += pending.request.prompt_tokens + pending.work.max_tokens
        self._push(now + self.profile.api_overhead_s, _ENQUEUE, pending)

    def _finish_unserved(self, pending: _Pending, status: str) -> None:
        self._results[pending.index] = RequestResult(
            pending.index, None, pending.work.arrival, status, gateway_wait=pending.gateway_wait
        )
        self._outstanding -= 1

    # -- engine side ------------------------------------------------------------------------

    def _enqueue(self, now: float, payload: object) -> None:
        pending = payload
        assert isinstance(pending, _Pending)
        work = pending.work
        text = pending.request.prompt
        prompt = tokenizer.encode(text)
        sim = SimRequest(
            request_id=pending.request.request_id,
            prompt=prompt,
            max_tokens=work.max_tokens,
            arrival=work.arrival + pending.gateway_wait,
            lora=pending.request.adapter,
            seed=pending.index,
            requested_max_tokens=work.max_tokens,
        )
        pending.sim = sim
        replica = self.replicas[pending.replica]
        replica.engine.add_request(sim, now)
        self._owners[sim.request_id] = pending
        if replica.plan is None:
            self._plan(pending.replica, now)
        elif replica.plan.repeat > 1:
            old_end = replica.plan.end
            replica.engine.shorten(replica.plan, now)
            if replica.plan.end != old_end:
                replica.version += 1
                self._push(replica.plan.end, _STEP_END, (pending.replica, replica.version))

    def _plan(self, index: int, now: float) -> None:
        replica = self.replicas[index]
        engine = replica.engine
        while True:
            plan = engine.schedule(now, max_steps=self.config.max_steps_per_plan)
            if plan is None:
                replica.plan = None
                return
            if plan.duration > 0:
                break
            self._collect(index, engine.apply(plan).finished, now)
        replica.plan = plan
        replica.version += 1
        self._push(plan.end, _STEP_END, (index, replica.version))

    def _step_end(self, now: float, payload: object) -> None:
        index, version = payload  # type: ignore[misc]
        replica = self.replicas[index]
        if version != replica.version or replica.plan is None:
            return
        out = replica.engine.apply(replica.plan)
        replica.plan = None
        self._collect(index, out.finished, now)
        self._plan(index, now)

    def _collect(self, index: int, finished: list[SimRequest], now: float) -> None:
        replica = self.replicas[index]
        for sim in finished:
            pending = self._owners.pop(sim.request_id)
            replica.in_flight -= 1
            replica.in_flight_tokens -= pending.request.prompt_tokens + pending.work.max_tokens
            first = sim.first_token_at if sim.first_token_at is not None else now
            end = sim.finished_at if sim.finished_at is not None else now
            itl = (end - first) / (sim.num_output - 1) if sim.num_output > 1 else math.nan
            cached = sim.num_cached_tokens or 0
            self._results[pending.index] = RequestResult(
                index=pending.index,
                endpoint=replica.url,
                arrival=pending.work.arrival,
                status="ok",
                prompt_tokens=sim.num_prompt_tokens,
                cached_tokens=cached,
                output_tokens=sim.num_output,
                gateway_wait=pending.gateway_wait,
                queue_time=(sim.scheduled_at or now) - sim.queued_at,
                ttft=first - pending.work.arrival,
                itl=itl,
                e2e=end - pending.work.arrival,
                preemptions=sim.num_preemptions,
            )
            self._outstanding -= 1
            self.scheduler.observe(
                Outcome(
                    request=pending.request,
                    endpoint_url=replica.url,
                    ok=True,
                    prompt_tokens=sim.num_prompt_tokens,
                    cached_tokens=cached,
                    output_tokens=sim.num_output,
                    now=now,
                )
            )

    def _scrape(self, now: float, payload: object) -> None:
        index = payload
        assert isinstance(index, int)
        replica = self.replicas[index]
        replica.metrics = scrape(replica.engine, now)
        self._push(now + self.config.scrape_interval, _SCRAPE, index)

    def _sample(self, now: float, payload: object) -> None:
        engines = [r.engine for r in self.replicas]
        self._series.append(
            FleetSample(
                now,
                tuple(len(e.running) for e in engines),
                tuple(len(e.waiting) for e in engines),
                tuple(e.kv.pool.usage() for e in engines),
            )
        )
        self._push(now + self.config.sample_interval, _SAMPLE, None)


def run_virtual(
    workload: Sequence[WorkloadRequest],
    scheduler: Scheduler,
    config: VirtualConfig | None = None,
    admission: AdmissionHook | None = None,
) -> VirtualResult:
    """Run `workload` through a simulated fleet routed by `scheduler`; see VirtualRunner."""
    return VirtualRunner(config or VirtualConfig(), scheduler, admission).run(workload)
