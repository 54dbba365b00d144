"""Runs a configured benchmark end to end: clients, stages, then the report files."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenway.bench.client import BenchClient
from tokenway.bench.config import BenchConfig
from tokenway.bench.report.files import prepare_output
from tokenway.bench.report.write import write_report
from tokenway.bench.runner import OnRecord, OnStage, TargetRun, run_plan


@dataclass(frozen=True, slots=True)
class BenchResult:
    runs: list[TargetRun]
    files: list[Path]


async def run_benchmark(config: BenchConfig, on_record: OnRecord, on_stage: OnStage) -> BenchResult:
    """Benchmarks every target of `config` with the same workload and writes the reports.

    The output folder is checked before any request is sent. When cancelled (Ctrl-C) after it
    started sending, it writes the stages that finished, then lets the cancellation through."""
    targets = config.named_targets()
    options = config.client_options()
    dataset, plan = config.dataset(), config.plan()
    prepare_output(config.output)
    origin = time.monotonic()
    facts: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "targets": ", ".join(f"{t.name} = {t.url}" for t in targets),
        "model": "(per request)",
        "data": config.data.type,
        "load": config.load.model_dump_json(exclude_defaults=True, by_alias=True),
        "streaming": config.stream,
        "seed": config.seed,
    }
    title = "tokenway bench" + (" compare" if len(targets) > 1 else "")
    runs = [TargetRun(target.name) for target in targets]
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(BenchClient(target, options, origin))
            for target in targets
        ]
        models = sorted({client.model for client in clients})
        facts["model"] = ", ".join(m for m in models if m) or "(per request)"
        try:
            await run_plan(clients, runs, dataset, plan, on_record, on_stage)
        except asyncio.CancelledError:
            facts["interrupted"] = "yes: only the stages that finished are reported"
            write_report(config.output, runs, config.goodput_slo(), facts, title)
            raise
    files = write_report(config.output, runs, config.goodput_slo(), facts, title)
    return BenchResult(runs, files)
