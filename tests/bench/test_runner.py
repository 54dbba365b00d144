from __future__ import annotations

import gc
import time
from collections import Counter

import pytest

from tokenway.bench.client import BenchClient, ClientOptions, Target
from tokenway.bench.datasets import SharedPrefix, Synthetic, fixed
from tokenway.bench.load import ConcurrencyStage, RateStage, Stage, arrival_times
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.runner import Plan, TargetRun, run_plan
from tokenway.bench.sweep import Sweep
from tokenway.sim.faults import FaultConfig

from .conftest import faulty

SMALL = Synthetic(input_len=fixed(16), output_len=fixed(4))


def clients(*urls: str) -> list[BenchClient]:
    origin = time.monotonic()
    return [
        BenchClient(Target(f"t{i}", url), ClientOptions(), origin) for i, url in enumerate(urls)
    ]


async def run(urls: list[str], plan: Plan, dataset: object = SMALL) -> tuple[list, list]:
    stages: list[tuple[str, int, Stage]] = []
    seen: list[RequestRecord] = []
    bench = clients(*urls)
    runs = [TargetRun(c.target.name) for c in bench]
    for c in bench:
        await c.__aenter__()
    try:
        await run_plan(
            bench,
            runs,
            dataset,
            plan,
            seen.append,
            lambda *a: stages.append(a),  # type: ignore[arg-type]
        )
    finally:
        for c in bench:
            await c.__aexit__(None, None, None)
    return runs, stages


def max_in_flight(records: list[RequestRecord]) -> int:
    events = sorted([(r.start, 1) for r in records] + [(r.end, -1) for r in records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


async def test_rate_stages_send_on_schedule_after_warmup(instant: str) -> None:
    plan = Plan(
        stages=(RateStage(40, count=20, process="constant"), RateStage(80, count=16)),
        warmup=0.25,
    )
    [target], stages = await run([instant], plan)
    by_stage = Counter(r.stage for r in target.records)
    assert by_stage == {WARMUP_STAGE: 10, 0: 20, 1: 16}
    assert [index for _, index, _ in stages] == [WARMUP_STAGE, 0, 1]
    assert all(r.ok for r in target.records)
    stage0 = [r for r in target.records if r.stage == 0]
    offsets = [r.scheduled - stage0[0].scheduled for r in stage0]
    assert offsets == pytest.approx([i / 40 for i in range(20)])
    assert all(r.start >= r.scheduled for r in target.records)


async def test_concurrency_stage_keeps_the_level(h100: str) -> None:
    plan = Plan(stages=(ConcurrencyStage(3, count=12),))
    [target], _ = await run([h100], plan)
    assert len(target.records) == 12
    assert max_in_flight(target.records) == 3


async def test_stages_run_with_the_heap_frozen_and_release_it(instant: str) -> None:
    frozen_while_sending: list[int] = []

    def on_record(record: RequestRecord) -> None:
        frozen_while_sending.append(gc.get_freeze_count())

    bench = clients(instant)
    async with bench[0]:
        plan = Plan(stages=(RateStage(50, count=5), ConcurrencyStage(2, count=4)))
        await run_plan(bench, [TargetRun("t0")], SMALL, plan, on_record, lambda *a: None)
    assert len(frozen_while_sending) == 9
    assert all(count > 0 for count in frozen_while_sending)
    assert gc.get_freeze_count() == 0


async def test_sweep_stops_when_the_target_fails() -> None:
    fleet = await faulty(FaultConfig(error_rate=1.0))
    try:
        plan = Plan(sweep=Sweep(start=20, stage_duration=0.3, max_stages=4))
        [target], stages = await run(fleet.urls, plan)
    finally:
        await fleet.stop()
    assert len(stages) == 1 and target.saturated is not None and "failed" in target.saturated


async def test_sweep_climbs_while_the_target_keeps_up(instant: str) -> None:
    # thresholds out of reach: this checks the climbing, test_load checks the judging
    sweep = Sweep(start=5, stage_duration=0.5, max_stages=3, achieved_ratio=0.01, latency_ratio=1e6)
    plan = Plan(sweep=sweep)
    [target], stages = await run([instant], plan)
    assert [s.rate for _, _, s in stages] == [5, 10, 20]  # type: ignore[union-attr]
    assert target.saturated is None


async def test_compare_sends_identical_workloads_interleaved(instant: str) -> None:
    other = await faulty(FaultConfig())
    try:
        plan = Plan(stages=(RateStage(50, count=6), RateStage(50, count=6)), seed=3)
        dataset = SharedPrefix(num_groups=2, prompts_per_group=3, system_prompt_len=32)
        runs, stages = await run([instant, other.urls[0]], plan, dataset)
    finally:
        await other.stop()
    assert [(name, index) for name, index, _ in stages] == [
        ("t0", 0),
        ("t1", 0),
        ("t1", 1),
        ("t0", 1),
    ]
    first, second = runs
    assert [r.group for r in first.records] == [r.group for r in second.records]
    assert [r.input_tokens for r in first.records] == [r.input_tokens for r in second.records]


def test_sweep_stages_use_the_arrival_process() -> None:
    plan = Plan(sweep=Sweep(start=4, stage_duration=1, arrivals="constant"))
    assert plan.stage(2) == RateStage(16, duration=1, process="constant")
    assert Plan(sweep=Sweep(start=4, stage_duration=1)).stage(0).process == "poisson"  # type: ignore[union-attr]


async def test_an_empty_sweep_stage_is_not_judged(instant: str) -> None:
    # 0.5 req/s for 1 s: with seed 1 the Poisson arrivals leave stage 0 empty
    assert arrival_times(RateStage(0.5, duration=1), seed=2) == []
    plan = Plan(sweep=Sweep(start=0.5, stage_duration=1, max_stages=2), seed=1)
    [target], stages = await run([instant], plan)
    assert [index for _, index, _ in stages] == [0, 1]
    assert target.saturated is None and {r.stage for r in target.records} == {1}
