from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenway.config.errors import ConfigError
from tokenway.config.loader import parse_platform
from tokenway.config.units import parse_duration, parse_size

GOOD = """
gateway:
  listen: 127.0.0.1:9000
  maxRequestBytes: 1Mi
  timeouts: {connect: 500ms, firstByte: 30s}
pools:
  - name: llama
    endpoints: [127.0.0.1:8001, "http://127.0.0.1:8002"]
models:
  - name: chat
    pool: llama
    targets:
      - {model: base, weight: 70}
      - {adapter: lora-a, weight: 30}
  - name: batch
    pool: llama
    model: base
    priority: -1
"""


def test_good_file_parses_units_and_defaults() -> None:
    config = parse_platform(GOOD)
    assert config.gateway.port == 9000
    assert config.gateway.max_request_bytes == 2**20
    assert config.gateway.timeouts.connect == 0.5
    assert config.gateway.timeouts.idle == 120.0
    assert config.pools[0].endpoints == ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    assert [t.weight for t in config.models[0].resolved_targets()] == [70, 30]
    assert config.models[1].resolved_targets()[0].model == "base"


def test_errors_name_file_line_and_field() -> None:
    text = GOOD.replace("priority: -1", "priority: high").replace("500ms", "fast")
    with pytest.raises(ConfigError) as info:
        parse_platform(text, "platform.yaml")
    rendered = [str(issue) for issue in info.value.issues]
    assert any(r.startswith("platform.yaml:5: gateway.timeouts.connect:") for r in rendered)
    assert any(r.startswith("platform.yaml:18: models[1].priority:") for r in rendered)


def test_unknown_keys_and_pools_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.lisen"):
        parse_platform("gateway:\n  lisen: 1.2.3.4:5\n")
    with pytest.raises(ConfigError, match="unknown pool 'nope'"):
        parse_platform("models:\n  - {name: m, pool: nope}\n")
    with pytest.raises(ConfigError, match=r"objectives: duplicate names \['batch'\]"):
        parse_platform("objectives:\n  - {name: batch, priority: -1}\n  - {name: batch}\n")


def test_picker_must_wait_longer_than_requests_can_queue() -> None:
    assert parse_platform(GOOD).picker.message_timeout > 30.0  # outlasts the default queueTtl
    queued = GOOD.replace(
        "    endpoints: [127.0.0.1:8001",
        "    flowControl: {queueTtl: 2m}\n    endpoints: [127.0.0.1:8001",
    )
    with pytest.raises(ConfigError, match=r"messageTimeout \(60s\) must be longer than pools\[0\]"):
        parse_platform(queued)
    assert parse_platform(queued + "picker: {messageTimeout: 3m}\n").picker.message_timeout == 180
    unqueued = queued.replace("{queueTtl: 2m}", "{queueTtl: 2m, enabled: false}")
    assert parse_platform(unqueued).pools[0].flow_control.queue_ttl == 120


def test_invalid_yaml_reports_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_platform("pools:\n  - name: [unclosed\n", "x.yaml")
    assert info.value.issues[0].line is not None


@given(st.integers(min_value=0, max_value=10**6))
def test_durations_in_ms_round_trip(ms: int) -> None:
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)


@given(st.integers(min_value=0, max_value=2**20))
def test_sizes_in_kibibytes(k: int) -> None:
    assert parse_size(f"{k}Ki") == k * 1024


def test_an_endpoint_has_one_engine_and_scrapes_are_periodic() -> None:
    shared = (
        "pools:\n  - {name: a, endpoints: ['127.0.0.1:8001']}\n"
        "  - {name: b, engine: sglang, endpoints: ['127.0.0.1:8001']}\n"
    )
    with pytest.raises(ConfigError, match="is a vllm endpoint in pool 'a' and a sglang"):
        parse_platform(shared)
    with pytest.raises(ConfigError, match=r"gateway\.metricsInterval"):
        parse_platform("gateway: {metricsInterval: 0s}\n")


def test_names_that_become_services_follow_dns_1035() -> None:
    with pytest.raises(ConfigError, match=r"pools\[0\]\.name"):
        parse_platform("pools: [{name: 7b}]\n")
    with pytest.raises(ConfigError, match=r"pools\[0\]\.name"):
        parse_platform(f"pools: [{{name: {'p' * 60}}}]\n")  # <name>-epp would pass 63
    text = "pools: [{name: p}]\ndeployments: [{name: 7b, pool: p, model: m}]\n"
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.name"):
        parse_platform(text)
