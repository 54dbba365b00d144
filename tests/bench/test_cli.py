from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tokenway.bench.config import BenchConfig, load_bench_config
from tokenway.bench.datasets import LoraMix, SharedPrefix
from tokenway.bench.load import ConcurrencyStage, RateStage
from tokenway.bench.session import BenchResult
from tokenway.cli import bench as cli_bench
from tokenway.cli.bench import _overrides
from tokenway.cli.main import app
from tokenway.config.errors import ConfigError

runner = CliRunner()


def test_bench_runs_against_a_simulator_and_writes_reports(
    threaded_sim: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "bench",
            "-t",
            threaded_sim,
            "-o",
            str(out),
            "--rate",
            "40",
            "--requests",
            "12",
            "--output-tokens",
            "4",
            "--input-tokens",
            "16",
            "--slo-ttft",
            "2s",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary_lifecycle_metrics.json").read_text())
    assert summary["successes"]["count"] == 12
    assert summary["successes"]["goodput_metrics"]["goodput_percentage"] == 100.0
    assert "requests/s" in result.stdout and "report.html" in result.stdout


def test_compare_writes_a_folder_per_target(threaded_sim: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "compare",
            "-t",
            f"a={threaded_sim}",
            "-t",
            f"b={threaded_sim}/v1",
            "-o",
            str(tmp_path),
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--output-tokens",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "stage_0_lifecycle_metrics.json").exists()
    assert json.loads((tmp_path / "comparison.json").read_text())["targets"] == ["a", "b"]


def test_compare_needs_two_targets_and_bench_needs_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "compare", "-t", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "at least two" in result.output
    assert runner.invoke(app, ["bench"]).exit_code == 2


def test_bad_yaml_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        "targets:\n  - url: http://127.0.0.1:9\nload:\n  stages:\n    - rate: 5\n"
        "      duration: 10s\n      concurrency: 2\n"
    )
    result = runner.invoke(app, ["bench", "-c", str(path)])
    assert result.exit_code == 1
    assert f"{path}:5: load.stages[0]" in result.output
    assert "exactly one of rate or concurrency" in result.output
    path.write_text("targets:\n  - url: localhost:8000\n")
    with pytest.raises(ConfigError, match=r":2: targets\[0\]\.url: String should match"):
        load_bench_config(path, {})
    path.write_text("targets: [{url: x, colour: red}]\n")
    with pytest.raises(ConfigError, match=r":1: targets\[0\]\.colour"):
        load_bench_config(path, {})


def test_flags_override_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        "targets: [{url: 'http://a'}]\nmodel: base\n"
        "data: {type: shared-prefix, groups: 150, systemPromptTokens: 6000, lora: {count: 15}}\n"
        "load: {stages: [{concurrency: 8, count: 100}], warmup: 5s}\n"
    )
    config = load_bench_config(path, {"model": "other", "data": {"promptsPerGroup": 2}})
    assert config.model == "other"
    dataset = config.dataset()
    assert isinstance(dataset, LoraMix) and isinstance(dataset.base, SharedPrefix)
    assert dataset.base.num_groups == 150 and dataset.base.prompts_per_group == 2
    plan = config.plan()
    assert plan.stages == (ConcurrencyStage(8, count=100),) and plan.warmup == 5.0
    assert config.plan().warmup_stage() == ConcurrencyStage(8, duration=5.0)
    assert isinstance(
        load_bench_config(None, {"targets": [{"url": "http://x"}]}).plan().stages[0], RateStage
    )


def test_sweep_from_flags_reports_each_stage(threaded_sim: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "-t",
            threaded_sim,
            "-o",
            str(tmp_path),
            "--sweep",
            "--rate",
            "10",
            "--duration",
            "500ms",
            "--max-stages",
            "2",
            "--output-tokens",
            "2",
            "--data",
            "multi-turn",
            "--turns",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sweep stopped" not in result.stdout
    stages = [
        json.loads((tmp_path / f"stage_{i}_lifecycle_metrics.json").read_text()) for i in (0, 1)
    ]
    assert [s["load_summary"]["requested_rate"] for s in stages] == [10, 20]
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert all(json.loads(line)["group"].startswith("conversation-") for line in lines)


FLAGS = [
    "model",
    "output",
    "timeout",
    "seed",
    "tenant_header",
    "stream",
    "target",
    "requests",
    "sweep",
    "max_stages",
    "rate",
    "concurrency",
    "duration",
    "arrivals",
    "warmup",
    "data",
    "api",
    "groups",
    "prompts_per_group",
    "system_prompt_tokens",
    "turns",
    "file",
    "input_tokens",
    "output_tokens",
    "lora_adapters",
    "slo_ttft",
    "slo_tpot",
]


def test_a_duration_alone_sets_the_default_rate_stage() -> None:
    overrides = _overrides(**{**dict.fromkeys(FLAGS), "duration": "5s", "target": ["http://h"]})
    assert overrides["load"] == {"stages": [{"rate": 1.0, "duration": "5s"}]}
    config = load_bench_config(None, overrides)
    assert config.plan().stages == (RateStage(1.0, duration=5.0),)


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[BenchConfig]:
    """The configs `tokenway bench` would run, instead of running them."""
    seen: list[BenchConfig] = []

    async def record(config: BenchConfig, *callbacks: object) -> BenchResult:
        seen.append(config)
        return BenchResult([], [])

    monkeypatch.setattr(cli_bench, "run_benchmark", record)
    return seen


def bench(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, ["bench", "-t", "http://127.0.0.1:9", *args], env=env)


def test_arrivals_or_warmup_alone_keep_the_default_stage(planned: list[BenchConfig]) -> None:
    assert bench("--arrivals", "constant").exit_code == 0
    assert bench("--warmup", "1s").exit_code == 0
    constant, warm = (config.plan() for config in planned)
    assert constant.stages == (RateStage(1.0, duration=60.0, process="constant"),)
    assert warm.stages == (RateStage(1.0, duration=60.0),) and warm.warmup == 1.0


def test_load_flags_replace_the_files_stages_or_sweep(
    planned: list[BenchConfig], tmp_path: Path
) -> None:
    stages, sweep = tmp_path / "stages.yaml", tmp_path / "sweep.yaml"
    stages.write_text(
        "targets: [{url: 'http://127.0.0.1:9'}]\nload: {stages: [{rate: 5, count: 9}]}\n"
    )
    sweep.write_text("targets: [{url: 'http://127.0.0.1:9'}]\nload: {sweep: {start: 2, step: 3}}\n")
    for args in (["-c", str(stages), "--sweep"], ["-c", str(sweep), "--rate", "3"]):
        result = runner.invoke(app, ["bench", *args])
        assert result.exit_code == 0, result.output
    from_stages, from_sweep = (config.plan() for config in planned)
    assert from_stages.sweep is not None and from_stages.sweep.start == 1.0
    assert from_sweep.sweep is None and from_sweep.stages == (RateStage(3, duration=60.0),)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-n", "0"],
            "command line: load.stages[0].count: Input should be greater than or equal to 1",
        ),
        (["--sweep", "--max-stages", "0"], "command line: load.sweep.maxStages: Input should be"),
        (["--lora-adapters", "0"], "command line: data.lora.count: Input should be"),
        (["--timeout", "0s"], "command line: timeout: Input should be greater than 0"),
        (["--max-stages", "3"], "command line: --max-stages: counts sweep stages: add --sweep"),
        (["--sweep", "-n", "5"], "command line: --requests: sweep stages are rate stages"),
    ],
)
def test_zero_and_misplaced_flags_are_errors(
    planned: list[BenchConfig], args: list[str], message: str
) -> None:
    result = bench(*args)
    assert result.exit_code == 1 and message in result.output and not planned


def test_the_api_key_reaches_targets_from_the_file(
    planned: list[BenchConfig], tmp_path: Path
) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text("targets: [{url: 'http://127.0.0.1:9'}]\n")
    result = runner.invoke(app, ["bench", "-c", str(path)], env={"TOKENWAY_API_KEY": "sk-env"})
    assert result.exit_code == 0, result.output
    assert [t.api_key for t in planned[0].named_targets()] == ["sk-env"]


def test_an_unusable_output_is_an_error_naming_it(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    result = bench("-o", str(taken), "-n", "1")
    assert result.exit_code == 1
    assert f"error {taken}: cannot write the reports there" in result.output


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: object) -> BenchResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_bench, "run_benchmark", interrupted)
    result = bench()
    assert result.exit_code == 130 and "interrupted" in result.output
