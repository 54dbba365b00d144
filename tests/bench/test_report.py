from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tokenway.bench.load import ConcurrencyStage, RateStage
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.report import plots
from tokenway.bench.report.write import write_report
from tokenway.bench.runner import TargetRun
from tokenway.bench.stats import Slo

PNG = b"\x89PNG\r\n\x1a\n"


def records(name: str, stage: int, start: float, ttft: float, count: int) -> list[RequestRecord]:
    out = []
    for i in range(count):
        begin = start + i * 0.1
        times = [begin + ttft + j * 0.01 for j in range(5)]
        out.append(RequestRecord(stage, name, "g", "m", begin, begin, times[-1], times, 50, 5))
    return out


def target(name: str, ttft: float) -> TargetRun:
    run = TargetRun(name, stages=[RateStage(10, duration=1), RateStage(20, duration=1)])
    run.records = (
        records(name, WARMUP_STAGE, 0.0, ttft, 3)
        + records(name, 0, 1.0, ttft, 10)
        + records(name, 1, 3.0, ttft * 2, 10)
    )
    run.records.append(
        RequestRecord(1, name, "g", "m", 4.0, 4.0, 4.5, error="timeout", error_message="slow")
    )
    return run


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("single")
    facts = {"target": "<script>x</script>"}
    return out, write_report(out, [target("sim", 0.05)], Slo(ttft=0.08), facts)


def test_single_target_writes_the_inference_perf_files(single: tuple[Path, list[Path]]) -> None:
    tmp_path, written = single
    names = {p.name for p in written}
    assert {
        "summary_lifecycle_metrics.json",
        "stage_0_lifecycle_metrics.json",
        "stage_1_lifecycle_metrics.json",
        "requests.jsonl",
        "report.html",
    } <= names
    summary = json.loads((tmp_path / "summary_lifecycle_metrics.json").read_text())
    assert summary["load_summary"]["count"] == 21  # warm-up left out
    assert summary["successes"]["goodput_metrics"]["good_requests"] == 10
    assert summary["failures"]["by_label"]["timeout"]["count"] == 1
    stage = json.loads((tmp_path / "stage_1_lifecycle_metrics.json").read_text())
    assert stage["load_summary"]["requested_rate"] == 20
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 24 and json.loads(lines[0])["stage"] == WARMUP_STAGE
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes().startswith(PNG)
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_html_is_self_contained(single: tuple[Path, list[Path]]) -> None:
    page = (single[0] / "report.html").read_text()
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3
    assert not re.search(r'(src|href)="(http|/|\.)', page)
    assert "TTFT p90" in page


def test_comparison_has_ratios_against_the_first_target(tmp_path: Path) -> None:
    runs = [target("direct", 0.05), target("gateway", 0.1)]
    write_report(tmp_path, runs, None, {})
    for name in ("direct", "gateway"):
        assert (tmp_path / name / "summary_lifecycle_metrics.json").exists()
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["baseline"] == "direct"
    ttft = comparison["metrics"]["TTFT p50"]
    assert abs(ttft["ratios"]["gateway"] - 2.0) < 1e-6 and ttft["ratios"]["direct"] == 1.0
    assert "gateway / direct" in (tmp_path / "report.html").read_text()


def test_concurrency_runs_plot_against_concurrency(tmp_path: Path) -> None:
    run = TargetRun("sim", stages=[ConcurrencyStage(1, count=5), ConcurrencyStage(4, count=5)])
    run.records = records("sim", 0, 0.0, 0.05, 5) + records("sim", 1, 1.0, 0.05, 5)
    write_report(tmp_path, [run], None, {})
    stage = json.loads((tmp_path / "stage_1_lifecycle_metrics.json").read_text())
    assert stage["load_summary"]["concurrency"] == 4
    assert (tmp_path / "throughput_and_latency_vs_load.png").exists()


def test_a_reused_folder_keeps_only_the_last_reports_files(tmp_path: Path) -> None:
    def stages(name: str, count: int) -> TargetRun:
        run = TargetRun(name, stages=[RateStage(10, duration=1)] * count)
        run.records = [r for i in range(count) for r in records(name, i, 2.0 * i, 0.05, 3)]
        return run

    def files() -> set[Path]:
        return {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}

    write_report(tmp_path, [stages("a", 3), stages("b", 3)], None, {})
    mine = {Path("notes.txt"), Path("data/requests.jsonl"), Path("a/notes.txt")}
    for path in mine:
        path = tmp_path / path
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    written = write_report(tmp_path, [stages("sim", 3)], None, {})
    assert files() == {p.relative_to(tmp_path) for p in written} | mine
    assert not (tmp_path / "b").exists()
    written = write_report(tmp_path, [stages("sim", 1)], None, {})
    assert files() == {p.relative_to(tmp_path) for p in written} | mine
    assert not (tmp_path / "stage_2_lifecycle_metrics.json").exists()


def test_the_lag_plot_leaves_out_warm_up() -> None:
    run = target("sim", 0.05)
    lag_axes = plots.ttft_figure([run]).axes[1]
    [points] = lag_axes.collections
    assert len(points.get_offsets()) == sum(r.stage != WARMUP_STAGE for r in run.records)
