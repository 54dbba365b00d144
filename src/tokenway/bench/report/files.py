"""Writes a run's files: inference-perf JSON names, per-request JSONL, the comparison table."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenway.bench.headline import ratio_json
from tokenway.bench.report.lifecycle import TargetReports
from tokenway.bench.runner import TargetRun

SUMMARY = "summary_lifecycle_metrics.json"
REQUESTS = "requests.jsonl"
COMPARISON = "comparison.json"
PAGE = "report.html"
_STAGE = re.compile(r"stage_\d+_lifecycle_metrics\.json")


class OutputError(Exception):
    """The output folder cannot be created or written; the message names the path."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def prepare_output(output: Path) -> None:
    """Creates `output` and proves it writable, so an unusable --output fails before any load."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as exc:
        raise OutputError(output, f"cannot write the reports there ({exc.strerror})") from None


def _owned(directory: Path, extra: Iterable[str]) -> list[Path]:
    """The files in `directory` a report writes: lifecycle JSON, requests.jsonl, `extra` names."""
    if not directory.is_dir():
        return []
    names = {SUMMARY, REQUESTS, *extra}
    return [
        path
        for path in directory.iterdir()
        if path.is_file() and (path.name in names or _STAGE.fullmatch(path.name))
    ]


def _previous_targets(output: Path) -> list[str]:
    """The target folders the last comparison written into `output` created, from its table."""
    try:
        targets = json.loads((output / COMPARISON).read_text(encoding="utf-8"))["targets"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    # only plain folder names: a hand-edited table must not reach outside `output`
    return [
        t for t in targets if isinstance(t, str) and t not in ("", ".", "..") and Path(t).name == t
    ]


def clear_previous(output: Path, top_files: Iterable[str], targets: Iterable[str]) -> None:
    """Removes what an earlier report left in `output`, so stale stages cannot mix with new
    ones: the report file names there (`top_files` too) and in each target folder, of this run
    (`targets`) and of the last comparison. A target folder left empty is removed; nothing
    else is touched."""
    folders = [output / name for name in {*targets, *_previous_targets(output)}]
    for path in _owned(output, [COMPARISON, PAGE, *top_files]):
        path.unlink()
    for folder in folders:
        for path in _owned(folder, []):
            path.unlink()
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def target_dir(output: Path, name: str, several: bool) -> Path:
    """One target writes straight into `output`; compared targets each get a folder."""
    return output / name if several else output


def write_lifecycle(directory: Path, reports: TargetReports) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if reports.summary is not None:
        written.append(directory / SUMMARY)
        _write_json(written[-1], reports.summary)
    for index, stage in reports.stages.items():
        written.append(directory / f"stage_{index}_lifecycle_metrics.json")
        _write_json(written[-1], stage)
    return written


def write_requests(directory: Path, run: TargetRun) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REQUESTS
    with path.open("w", encoding="utf-8") as out:
        for record in run.records:
            out.write(json.dumps(record.to_json()) + "\n")
    return path


def write_comparison(output: Path, reports: Sequence[TargetReports]) -> Path:
    path = output / COMPARISON
    summaries = {r.name: r.summary for r in reports if r.summary is not None}
    _write_json(path, ratio_json(summaries))
    return path
