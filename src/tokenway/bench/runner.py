"""Drives load stages against targets: open-loop rate stages, closed-loop concurrency stages,
warm-up, sweeps that stop at saturation, and interleaving when several targets are compared."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from tokenway.bench.client import BenchClient
from tokenway.bench.datasets.base import Dataset
from tokenway.bench.load import ConcurrencyStage, RateStage, Stage, rate_workload
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.stats import distribution
from tokenway.bench.sweep import StageOutcome, Sweep, saturation
from tokenway.bench.workload import WorkloadRequest
from tokenway.heap import frozen

OnRecord = Callable[[RequestRecord], None]
OnStage = Callable[[str, int, Stage], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """The load of a run: fixed stages or a sweep, with an optional warm-up before them."""

    stages: tuple[Stage, ...] = ()
    sweep: Sweep | None = None
    warmup: float = 0.0
    """Seconds of load at the first stage's level before stage 0; measured, then left out."""
    seed: int = 0

    def __post_init__(self) -> None:
        if bool(self.stages) == (self.sweep is not None):
            raise ValueError("a plan needs either stages or a sweep")

    def stage(self, index: int) -> Stage | None:
        if self.sweep is None:
            return self.stages[index] if index < len(self.stages) else None
        if index >= self.sweep.max_stages:
            return None
        sweep = self.sweep
        return RateStage(sweep.rate(index), sweep.stage_duration, process=sweep.arrivals)

    def warmup_stage(self) -> Stage | None:
        first = self.stage(0)
        if self.warmup <= 0 or first is None:
            return None
        if isinstance(first, ConcurrencyStage):
            return ConcurrencyStage(first.concurrency, duration=self.warmup)
        return RateStage(first.rate, duration=self.warmup, process=first.process)


@dataclass(slots=True)
class TargetRun:
    """Everything measured against one target."""

    name: str
    records: list[RequestRecord] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    saturated: str | None = None
    """Why a sweep stopped for this target (None when it never saturated)."""


async def run_rate_stage(
    client: BenchClient, workload: Sequence[WorkloadRequest], index: int, on_record: OnRecord
) -> list[RequestRecord]:
    """Sends each request at its arrival offset from now, without waiting for answers.

    Runs with the heap frozen (see `tokenway.heap`): a full collection otherwise holds back
    every request due during it, 60-100 ms of scheduling lag once or twice per stage."""
    with frozen():
        return await _send_on_time(client, workload, index, on_record)


async def _send_on_time(
    client: BenchClient, workload: Sequence[WorkloadRequest], index: int, on_record: OnRecord
) -> list[RequestRecord]:
    loop = asyncio.get_running_loop()
    begin = client.now()

    async def one(request: WorkloadRequest, due: float) -> RequestRecord:
        record = await client.send(request, index, due)
        on_record(record)
        return record

    tasks = []
    for request in workload:
        due = begin + request.arrival
        # uvloop rounds timers to whole milliseconds and may wake early: sleep again until due
        while (delay := due - client.now()) > 0:  # noqa: ASYNC110 - waiting for a time, not an event
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(request, due)))
    return list(await asyncio.gather(*tasks))


async def run_concurrency_stage(
    client: BenchClient,
    stream: Iterator[WorkloadRequest],
    stage: ConcurrencyStage,
    index: int,
    on_record: OnRecord,
) -> list[RequestRecord]:
    """Keeps `stage.concurrency` requests in flight until the count or the duration is reached."""
    with frozen():
        deadline = client.now() + stage.duration if stage.duration is not None else float("inf")
        issued = itertools.count()
        limit = stage.count if stage.count is not None else float("inf")
        records: list[RequestRecord] = []

        async def worker() -> None:
            while next(issued) < limit and client.now() < deadline:
                record = await client.send(next(stream), index, client.now())
                records.append(record)
                on_record(record)

        await asyncio.gather(*(worker() for _ in range(stage.concurrency)))
    return records


async def run_stage(
    client: BenchClient,
    stream: Iterator[WorkloadRequest],
    stage: Stage,
    index: int,
    seed: int,
    on_record: OnRecord,
) -> list[RequestRecord]:
    if isinstance(stage, ConcurrencyStage):
        return await run_concurrency_stage(client, stream, stage, index, on_record)
    return await run_rate_stage(client, rate_workload(stream, stage, seed), index, on_record)


def outcome(stage: RateStage, records: Sequence[RequestRecord]) -> StageOutcome:
    """The numbers a sweep judges saturation by, for a stage that sent at least one request.

    Both rates divide by the send window (first to last send, plus one mean gap). The achieved
    rate counts the successful answers that arrived by the window's end plus the stage's median
    latency: a target that keeps up answers each request about one typical latency after it was
    sent, however long that latency is, so nearly all of them count. A target that falls behind
    answers later and later through the stage; the requests sent last miss that deadline, and
    more of them the faster the backlog grows. Dividing by the span up to the last answer
    instead would count every latency as lost throughput."""
    first = min(r.scheduled for r in records)
    window = max(r.scheduled for r in records) - first + 1 / stage.rate
    ok = [r for r in records if r.ok]
    median = distribution([r.latency for r in ok])
    latency = median["median"] if median else float("inf")
    answered = sum(1 for r in ok if r.end <= first + window + latency)
    return StageOutcome(
        offered_rate=len(records) / window,
        achieved_rate=answered / window,
        median_latency=latency,
        failure_ratio=(len(records) - len(ok)) / len(records),
    )


async def run_plan(
    clients: Sequence[BenchClient],
    runs: Sequence[TargetRun],
    dataset: Dataset,
    plan: Plan,
    on_record: OnRecord,
    on_stage: OnStage,
) -> None:
    """Runs every stage against every target, adding each finished stage to the target's run
    (runs[i] for clients[i]), so an interrupted plan leaves its finished stages in `runs`.

    With several targets each stage visits them in a rotating order, so slow drift of the
    machine falls evenly on all of them. Each target gets its own stream from the same seed:
    identical requests at identical offsets."""
    streams = [dataset.stream(plan.seed) for _ in clients]
    firsts: dict[int, StageOutcome] = {}
    warmup = plan.warmup_stage()
    if warmup is not None:
        for client, stream, run in zip(clients, streams, runs, strict=True):
            on_stage(run.name, WARMUP_STAGE, warmup)
            records = await run_stage(client, stream, warmup, WARMUP_STAGE, plan.seed, on_record)
            run.records.extend(records)
    for index in itertools.count():
        stage = plan.stage(index)
        if stage is None:
            break
        active = [i for i, run in enumerate(runs) if run.saturated is None]
        if not active:
            break
        shift = index % len(active)
        for i in active[shift:] + active[:shift]:
            on_stage(runs[i].name, index, stage)
            records = await run_stage(
                clients[i], streams[i], stage, index, plan.seed + index + 1, on_record
            )
            runs[i].records.extend(records)
            runs[i].stages.append(stage)
            # Poisson arrivals can leave a short stage empty: nothing to judge it by
            if plan.sweep is not None and isinstance(stage, RateStage) and records:
                result = outcome(stage, records)
                first = firsts.setdefault(i, result)
                runs[i].saturated = saturation(plan.sweep, first, result)
