"""Writes a run's files: inference-perf JSON names, per-request JSONL, the comparison table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenway.bench.headline import ratio_json
from tokenway.bench.report.lifecycle import TargetReports
from tokenway.bench.runner import TargetRun


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def target_dir(output: Path, name: str, several: bool) -> Path:
    """One target writes straight into `output`; compared targets each get a folder."""
    return output / name if several else output


def write_lifecycle(directory: Path, reports: TargetReports) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if reports.summary is not None:
        written.append(directory / "summary_lifecycle_metrics.json")
        _write_json(written[-1], reports.summary)
    for index, stage in reports.stages.items():
        written.append(directory / f"stage_{index}_lifecycle_metrics.json")
        _write_json(written[-1], stage)
    return written


def write_requests(directory: Path, run: TargetRun) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "requests.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for record in run.records:
            out.write(json.dumps(record.to_json()) + "\n")
    return path


def write_comparison(output: Path, reports: Sequence[TargetReports]) -> Path:
    path = output / "comparison.json"
    summaries = {r.name: r.summary for r in reports if r.summary is not None}
    _write_json(path, ratio_json(summaries))
    return path
