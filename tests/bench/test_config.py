from __future__ import annotations

from pathlib import Path

import pytest

from tokenway.bench.config import load_bench_config
from tokenway.bench.load import RateStage
from tokenway.config.errors import ConfigError

TARGET = "targets: [{url: 'http://127.0.0.1:9', apiKey: from-file}, {url: 'http://127.0.0.1:8'}]\n"


@pytest.mark.parametrize(
    ("yaml", "where"),
    [
        (
            "data:\n  outputTokens: {mean: 10, min: 20, max: 10}\n",
            r":3: data\.outputTokens\.max: .*below min",
        ),
        (
            "load:\n  stages:\n    - {rate: 5, duration: 0s}\n",
            r":4: load\.stages\[0\]\.duration: .*greater than 0",
        ),
        (
            "load:\n  stages:\n    - {rate: 0.5, duration: 1s}\n",
            r":4: load\.stages\[0\]: .*under 1 request",
        ),
        ("load:\n  sweep: {start: 1, step: 1}\n", r":3: load\.sweep\.step: .*must be > 1"),
        (
            "load:\n  sweep: {start: 0.1, stageDuration: 5s}\n",
            r":3: load\.sweep: .*under 1 request",
        ),
        ("timeout: 0s\n", r":2: timeout: .*greater than 0"),
    ],
)
def test_bad_values_name_file_line_and_field(tmp_path: Path, yaml: str, where: str) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(TARGET + yaml)
    with pytest.raises(ConfigError, match=f"bench.yaml{where}"):
        load_bench_config(path, {})


def test_values_from_flags_name_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(TARGET + "timeout: 10s\n")
    with pytest.raises(ConfigError, match=r"^command line: timeout: .*greater than 0$"):
        load_bench_config(path, {"timeout": "0s"})


def test_arrivals_or_warmup_alone_keep_the_default_stage(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(TARGET + "load: {warmup: 2s}\n")
    plan = load_bench_config(path, {"load": {"arrivals": "constant"}}).plan()
    assert plan.stages == (RateStage(1.0, duration=60.0, process="constant"),)
    assert plan.warmup == 2.0


def test_flag_stages_replace_a_file_sweep_and_a_flag_sweep_its_stages(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(TARGET + "load: {arrivals: constant, sweep: {start: 2, step: 3}}\n")
    plan = load_bench_config(path, {"load": {"stages": [{"rate": 4, "count": 8}]}}).plan()
    assert plan.sweep is None and plan.stages == (RateStage(4, count=8, process="constant"),)
    plan = load_bench_config(path, {"load": {"sweep": {"maxStages": 2}}}).plan()
    assert plan.sweep is not None
    assert (plan.sweep.start, plan.sweep.step, plan.sweep.max_stages) == (2, 3, 2)
    assert plan.stage(1) == RateStage(6, duration=15.0, process="constant")
    path.write_text(TARGET + "load: {stages: [{rate: 4, count: 8}]}\n")
    plan = load_bench_config(path, {"load": {"sweep": {"start": 5}}}).plan()
    assert plan.stages == () and plan.sweep is not None and plan.sweep.start == 5


def test_the_api_key_reaches_the_files_targets(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(TARGET)
    keys = [t.api_key for t in load_bench_config(path, {}).named_targets()]
    assert keys == ["from-file", ""]
    keys = [t.api_key for t in load_bench_config(path, {}, "sk-flag").named_targets()]
    assert keys == ["sk-flag", "sk-flag"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "c\\\\d"])
def test_a_target_name_cannot_leave_the_output_folder(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(f"targets: [{{url: 'http://127.0.0.1:9', name: '{name}'}}]\n")
    with pytest.raises(ConfigError, match=r"targets\[0\]\.name"):
        load_bench_config(path, {})
