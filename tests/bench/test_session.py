from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tokenway.bench import session
from tokenway.bench.config import BenchConfig, load_bench_config
from tokenway.bench.load import Stage
from tokenway.bench.report.files import OutputError
from tokenway.bench.session import BenchResult, run_benchmark


def config(url: str, output: Path, stages: list[dict[str, object]]) -> BenchConfig:
    return load_bench_config(
        None,
        {
            "targets": [{"url": url}],
            "output": str(output),
            "load": {"stages": stages},
            "data": {"inputTokens": {"mean": 8}, "outputTokens": {"mean": 2}},
        },
    )


async def test_a_cancelled_run_writes_the_stages_that_finished(
    instant: str, tmp_path: Path
) -> None:
    settings = config(instant, tmp_path, [{"rate": 50, "count": 5}, {"rate": 1, "duration": 60}])
    task: asyncio.Task[BenchResult] | None = None

    def on_stage(target: str, index: int, stage: Stage) -> None:
        if index == 1 and task is not None:
            task.cancel()

    task = asyncio.create_task(run_benchmark(settings, lambda r: None, on_stage))
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 5 and {json.loads(line)["stage"] for line in lines} == {0}
    summary = json.loads((tmp_path / "summary_lifecycle_metrics.json").read_text())
    assert summary["successes"]["count"] == 5
    assert not (tmp_path / "stage_1_lifecycle_metrics.json").exists()
    assert "only the stages that finished" in (tmp_path / "report.html").read_text()


async def test_an_unusable_output_fails_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")

    async def no_load(*args: object) -> None:
        raise AssertionError("load was sent")

    monkeypatch.setattr(session, "run_plan", no_load)
    for output in (taken, taken / "sub"):
        settings = config("http://127.0.0.1:9", output, [{"rate": 1, "count": 1}])
        with pytest.raises(OutputError, match=f"^{output}: cannot write the reports there"):
            await run_benchmark(settings, lambda r: None, lambda *a: None)
