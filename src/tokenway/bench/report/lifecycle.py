"""Lifecycle-metrics reports of a finished run, per target: the summary and one per stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenway.bench.load import ConcurrencyStage, RateStage
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.runner import TargetRun
from tokenway.bench.stats import Slo, lifecycle_metrics


@dataclass(frozen=True, slots=True)
class TargetReports:
    name: str
    summary: dict[str, Any] | None
    stages: dict[int, dict[str, Any]]


def _by_stage(records: Sequence[RequestRecord]) -> dict[int, list[RequestRecord]]:
    stages: dict[int, list[RequestRecord]] = {}
    for record in records:
        if record.stage != WARMUP_STAGE:
            stages.setdefault(record.stage, []).append(record)
    return stages


def _span(records: Sequence[RequestRecord]) -> float:
    return max(r.end for r in records) - min(r.start for r in records)


def target_reports(run: TargetRun, slo: Slo | None) -> TargetReports:
    """Stage reports carry the stage's requested rate or concurrency; the summary's throughput
    divides by the time the stages actually ran (their spans added), which for one target is
    the run's duration and for interleaved targets leaves out the other targets' turns."""
    by_stage = _by_stage(run.records)
    stages = {}
    for index, records in sorted(by_stage.items()):
        stage = run.stages[index]
        stages[index] = lifecycle_metrics(
            records,
            requested_rate=stage.rate if isinstance(stage, RateStage) else None,
            concurrency=stage.concurrency if isinstance(stage, ConcurrencyStage) else None,
            slo=slo,
        )
    measured = [r for records in by_stage.values() for r in records]
    summary = (
        lifecycle_metrics(measured, slo=slo, total_time=sum(_span(rs) for rs in by_stage.values()))
        if measured
        else None
    )
    return TargetReports(run.name, summary, stages)
