"""Everything a finished run leaves in its output folder, in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenway.bench.report import files, html, plots
from tokenway.bench.report.lifecycle import TargetReports, target_reports
from tokenway.bench.runner import TargetRun
from tokenway.bench.stats import Slo

LATENCY = "latency distributions"
LOAD = "throughput and latency vs load"
OVER_TIME = "TTFT and scheduling lag over time"


def _png_name(caption: str) -> str:
    return f"{caption.replace(' ', '_')}.png"


def write_report(
    output: Path,
    runs: Sequence[TargetRun],
    slo: Slo | None,
    facts: Mapping[str, Any],
    title: str = "tokenway bench",
) -> list[Path]:
    """Lifecycle JSON and requests.jsonl per target, comparison.json for several targets,
    plots as PNG and the HTML report with the same plots inlined, after removing the files an
    earlier report left in `output`. Returns the paths written; OutputError when it cannot."""
    try:
        return _write(output, runs, slo, facts, title)
    except OSError as exc:
        raise files.OutputError(exc.filename or output, exc.strerror or str(exc)) from None


def _write(
    output: Path,
    runs: Sequence[TargetRun],
    slo: Slo | None,
    facts: Mapping[str, Any],
    title: str,
) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    several = len(runs) > 1
    files.clear_previous(
        output,
        [_png_name(caption) for caption in (LATENCY, LOAD, OVER_TIME)],
        [run.name for run in runs] if several else [],
    )
    reports: list[TargetReports] = [target_reports(run, slo) for run in runs]
    written: list[Path] = []
    for run, report in zip(runs, reports, strict=True):
        directory = files.target_dir(output, run.name, several)
        written += files.write_lifecycle(directory, report)
        written.append(files.write_requests(directory, run))
    if several:
        written.append(files.write_comparison(output, reports))
    images = {LATENCY: plots.latency_cdfs(runs)}
    if any(len(report.stages) > 1 for report in reports):
        images[LOAD] = plots.load_curves(runs, reports)
    images[OVER_TIME] = plots.ttft_over_time(runs)
    for caption, png in images.items():
        path = output / _png_name(caption)
        path.write_bytes(png)
        written.append(path)
    notes = [f"{run.name}: sweep stopped, {run.saturated}" for run in runs if run.saturated]
    page = output / files.PAGE
    page.write_text(html.render(title, facts, reports, images, notes), encoding="utf-8")
    written.append(page)
    return written
