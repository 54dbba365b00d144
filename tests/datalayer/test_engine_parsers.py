from __future__ import annotations

from pathlib import Path

import pytest

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.parsers import ENGINES, MetricsFormatError, parser_for

FIXTURES = Path(__file__).parent / "fixtures"


def parse(engine: str, fixture: str) -> EndpointMetrics:
    return parser_for(engine).parse((FIXTURES / fixture).read_text())


def test_vllm_current_names() -> None:
    assert parse("vllm", "vllm.prom") == EndpointMetrics(
        waiting=3,
        running=7,
        kv_usage=0.25,
        block_size=16,
        num_blocks=27000,
        max_loras=4,
        running_loras=frozenset({"sql-lora", "chat-lora"}),
        waiting_loras=frozenset({"summarise-lora"}),
        prefix_cache_queries=100000.0,
        prefix_cache_hits=60000.0,
    )


def test_vllm_deprecated_names() -> None:
    metrics = parse("vllm", "vllm_deprecated.prom")
    assert metrics.kv_usage == 0.4217
    assert (metrics.prefix_cache_queries, metrics.prefix_cache_hits) == (48112.0, 29011.0)
    assert (metrics.block_size, metrics.num_blocks) == (16, 27349)
    assert (metrics.waiting, metrics.running) == (3, 7)


def test_vllm_current_name_wins_when_both_are_exposed() -> None:
    text = (
        "vllm:num_requests_waiting 0\nvllm:num_requests_running 0\n"
        "vllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.1\n"
        "vllm:gpu_prefix_cache_hits_total 5\nvllm:prefix_cache_hits_total 50\n"
    )
    metrics = parser_for("vllm").parse(text)
    assert (metrics.kv_usage, metrics.prefix_cache_hits) == (0.1, 50.0)


def test_vllm_data_parallel_engines_add_up_and_kv_is_the_mean() -> None:
    metrics = parse("vllm", "vllm_data_parallel.prom")
    assert (metrics.waiting, metrics.running) == (3 + 5, 7 + 8)
    assert metrics.kv_usage == pytest.approx((0.25 + 0.75) / 2)
    assert metrics.num_blocks == 27000 + 27001
    assert metrics.prefix_cache_queries == 100000.0 + 200000.0


def test_vllm_lora_uses_the_newest_series_whatever_its_position() -> None:
    base = "vllm:num_requests_waiting 0\nvllm:num_requests_running 1\n"
    rows = [
        'vllm:lora_requests_info{max_lora="2",running_lora_adapters="a",waiting_lora_adapters=""}',
        'vllm:lora_requests_info{max_lora="2",running_lora_adapters="b, c",'
        'waiting_lora_adapters="d"}',
        'vllm:lora_requests_info{max_lora="2",running_lora_adapters="",waiting_lora_adapters=""}',
    ]
    for newest in range(3):
        text = base + "".join(
            f"{row} {1.7e9 + (10 if i == newest else i)}\n" for i, row in enumerate(rows)
        )
        metrics = parser_for("vllm").parse(text)
        expected_running = [{"a"}, {"b", "c"}, set()][newest]
        assert metrics.running_loras == expected_running
        assert metrics.waiting_loras == ({"d"} if newest == 1 else set())
        assert metrics.max_loras == 2


def test_vllm_without_lora_or_cache_config() -> None:
    metrics = parser_for("vllm").parse("vllm:num_requests_waiting 1\nvllm:num_requests_running 2\n")
    assert metrics == EndpointMetrics(waiting=1, running=2)


@pytest.mark.parametrize("engine", ["vllm", "llamacpp"])
def test_a_page_of_another_engine_is_a_format_error(engine: str) -> None:
    with pytest.raises(MetricsFormatError, match=f"not a {engine} metrics page"):
        parser_for(engine).parse((FIXTURES / "sglang.prom").read_text())


def test_sglang() -> None:
    assert parse("sglang", "sglang.prom") == EndpointMetrics(
        waiting=4,
        running=12,
        kv_usage=0.62,
        block_size=1,
        num_blocks=295823,
        prefix_cache_queries=4.1233e06,
        prefix_cache_hits=1.5e06 + 204100.0,
    )


def test_trtllm() -> None:
    assert parse("trtllm", "trtllm.prom") == EndpointMetrics(
        waiting=6,
        running=22,
        kv_usage=0.718,
        block_size=32,
        num_blocks=8192,
        prefix_cache_queries=2.2e06,
        prefix_cache_hits=880000.0,
    )
    assert parser_for("trtllm").metrics_path == "/prometheus/metrics"


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_engines_that_publish_gauges_late_read_a_fresh_page_as_idle(engine: str) -> None:
    assert parser_for(engine).parse("# nothing published yet\n") == EndpointMetrics()


def test_llamacpp_has_no_kv_gauge_and_counts_cached_prompt_tokens() -> None:
    assert parse("llamacpp", "llamacpp.prom") == EndpointMetrics(
        waiting=2,
        running=3,
        kv_usage=0.0,
        prefix_cache_queries=40122.0 + 9878.0,
        prefix_cache_hits=9878.0,
    )


def test_llamacpp_older_builds_kv_ratio_is_used() -> None:
    text = (FIXTURES / "llamacpp.prom").read_text() + "llamacpp:kv_cache_usage_ratio 0.37\n"
    assert parser_for("llamacpp").parse(text).kv_usage == 0.37


def test_openai_engine_is_never_scraped() -> None:
    assert parser_for("openai").metrics_path is None
    assert parser_for("openai").parse("") == EndpointMetrics()


def test_every_config_engine_has_a_parser_and_unknown_engines_are_named() -> None:
    from typing import get_args

    from tokenway.config.pools import Engine

    assert set(get_args(Engine)) == set(ENGINES)
    with pytest.raises(ValueError, match="unknown engine 'tgi'"):
        parser_for("tgi")
