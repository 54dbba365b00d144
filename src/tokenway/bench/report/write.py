"""Everything a finished run leaves in its output folder, in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenway.bench.report import files, html, plots
from tokenway.bench.report.lifecycle import TargetReports, target_reports
from tokenway.bench.runner import TargetRun
from tokenway.bench.stats import Slo


def write_report(
    output: Path,
    runs: Sequence[TargetRun],
    slo: Slo | None,
    facts: Mapping[str, Any],
    title: str = "tokenway bench",
) -> list[Path]:
    """Lifecycle JSON and requests.jsonl per target, comparison.json for several targets,
    plots as PNG and the HTML report with the same plots inlined. Returns the paths written."""
    output.mkdir(parents=True, exist_ok=True)
    several = len(runs) > 1
    reports: list[TargetReports] = [target_reports(run, slo) for run in runs]
    written: list[Path] = []
    for run, report in zip(runs, reports, strict=True):
        directory = files.target_dir(output, run.name, several)
        written += files.write_lifecycle(directory, report)
        written.append(files.write_requests(directory, run))
    if several:
        written.append(files.write_comparison(output, reports))
    images = {"latency distributions": plots.latency_cdfs(runs)}
    if any(len(report.stages) > 1 for report in reports):
        images["throughput and latency vs load"] = plots.load_curves(runs, reports)
    images["TTFT and scheduling lag over time"] = plots.ttft_over_time(runs)
    for caption, png in images.items():
        path = output / f"{caption.replace(' ', '_')}.png"
        path.write_bytes(png)
        written.append(path)
    notes = [f"{run.name}: sweep stopped, {run.saturated}" for run in runs if run.saturated]
    page = output / "report.html"
    page.write_text(html.render(title, facts, reports, images, notes), encoding="utf-8")
    written.append(page)
    return written
