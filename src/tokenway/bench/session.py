"""Runs a configured benchmark end to end: clients, stages, then the report files."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from tokenway.bench.client import BenchClient
from tokenway.bench.config import BenchConfig
from tokenway.bench.report.write import write_report
from tokenway.bench.runner import OnRecord, OnStage, TargetRun, run_plan


@dataclass(frozen=True, slots=True)
class BenchResult:
    runs: list[TargetRun]
    files: list[Path]


async def run_benchmark(config: BenchConfig, on_record: OnRecord, on_stage: OnStage) -> BenchResult:
    """Benchmarks every target of `config` with the same workload and writes the reports."""
    targets = config.named_targets()
    options = config.client_options()
    origin = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(BenchClient(target, options, origin))
            for target in targets
        ]
        models = sorted({client.model for client in clients})
        runs = await run_plan(clients, config.dataset(), config.plan(), on_record, on_stage)
    facts = {
        "started": started,
        "targets": ", ".join(f"{t.name} = {t.url}" for t in targets),
        "model": ", ".join(m for m in models if m) or "(per request)",
        "data": config.data.type,
        "load": config.load.model_dump_json(exclude_defaults=True, by_alias=True),
        "streaming": config.stream,
        "seed": config.seed,
    }
    title = "tokenway bench" + (" compare" if len(targets) > 1 else "")
    files = write_report(config.output, runs, config.goodput_slo(), facts, title)
    return BenchResult(runs, files)
