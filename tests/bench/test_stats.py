from __future__ import annotations

import numpy as np
import pytest

from tokenway.bench.record import RequestRecord
from tokenway.bench.stats import PERCENTILES, Slo, distribution, lifecycle_metrics

DISTRIBUTION_KEYS = {"mean", "min", "max", "median"} | {f"p{p:g}" for p in PERCENTILES if p != 50}


def record(start: float, ttft: float, gaps: list[float], **kwargs: object) -> RequestRecord:
    times = [start + ttft]
    for gap in gaps:
        times.append(times[-1] + gap)
    return RequestRecord(
        stage=kwargs.pop("stage", 0),  # type: ignore[arg-type]
        target="t",
        group="",
        model="m",
        scheduled=start - 0.001,
        start=start,
        end=times[-1] + 0.001,
        token_times=times,
        input_tokens=100,
        output_tokens=len(times),
        **kwargs,  # type: ignore[arg-type]
    )


def test_distribution_has_the_inference_perf_keys() -> None:
    result = distribution([1.0, 2.0, 3.0, 4.0])
    assert result is not None and set(result) == DISTRIBUTION_KEYS
    assert result["median"] == 2.5 and result["p99.9"] == pytest.approx(
        np.percentile([1, 2, 3, 4], 99.9)
    )
    assert distribution([]) is None


def test_per_request_formulas() -> None:
    r = record(10.0, 0.2, [0.01, 0.03])
    assert r.ttft == pytest.approx(0.2)
    assert r.tpot == pytest.approx(0.04 / 2)
    assert r.itls == pytest.approx([0.01, 0.03])
    assert r.ntpot == pytest.approx(r.latency / 3)
    assert r.schedule_delay == pytest.approx(0.001)


def test_lifecycle_layout_and_throughput() -> None:
    records = [record(float(i), 0.1, [0.02] * 9) for i in range(10)]
    failed = RequestRecord(0, "t", "", "m", 3.0, 3.0, 3.5, error="http_500", error_message="boom")
    report = lifecycle_metrics([*records, failed], requested_rate=1.0)
    assert set(report) == {"benchmark_time_seconds", "load_summary", "successes", "failures"}
    load = report["load_summary"]
    assert set(load) == {
        "count",
        "schedule_delay",
        "send_duration",
        "requested_rate",
        "achieved_rate",
    }
    assert load["count"] == 11 and load["achieved_rate"] == pytest.approx(11 / 9)
    successes = report["successes"]
    assert set(successes["latency"]) == {
        "request_latency",
        "time_to_first_token",
        "time_per_output_token",
        "normalized_time_per_output_token",
        "inter_token_latency",
    }
    assert set(successes["throughput"]) == {
        "input_tokens_per_sec",
        "output_tokens_per_sec",
        "total_tokens_per_sec",
        "requests_per_sec",
    }
    span = records[-1].end - 0.0
    assert successes["throughput"]["output_tokens_per_sec"] == pytest.approx(100 / span)
    assert successes["throughput"]["input_tokens_per_sec"] == pytest.approx(1000 / span)
    assert successes["latency"]["time_per_output_token"]["median"] == pytest.approx(0.02)
    assert successes["latency"]["time_to_first_token"]["max"] == pytest.approx(0.1)
    assert "goodput_metrics" not in successes
    assert successes["prompt_tokens"]["total"] == 1000 and successes["prompt_tokens"]["cached"] == 0
    assert successes["output_tokens"]["total"] == 100
    assert successes["output_tokens"]["median"] == successes["output_len"]["median"] == 10
    failures = report["failures"]
    assert failures["count"] == 1
    assert failures["by_label"] == {"http_500": {"count": 1, "messages": [{"message": "boom"}]}}


def test_goodput_counts_requests_meeting_every_constraint() -> None:
    fast = [record(float(i), 0.1, [0.01] * 4) for i in range(3)]
    slow_start = record(3.0, 0.9, [0.01] * 4)
    slow_tokens = record(4.0, 0.1, [0.2] * 4)
    report = lifecycle_metrics(
        [*fast, slow_start, slow_tokens], slo=Slo(ttft=0.5, tpot=0.05), total_time=10.0
    )
    goodput = report["successes"]["goodput_metrics"]
    assert goodput["good_requests"] == 3 and goodput["total_requests"] == 5
    assert goodput["goodput_percentage"] == pytest.approx(60.0)
    assert goodput["request_goodput"] == pytest.approx(0.3)
    assert goodput["ttft_attainment_percentage"] == pytest.approx(80.0)
    assert goodput["tpot_attainment_percentage"] == pytest.approx(80.0)
    assert report["benchmark_time_seconds"] == 10.0


def test_concurrency_is_reported_and_empty_input_is_refused() -> None:
    report = lifecycle_metrics([record(0.0, 0.1, [0.01])], concurrency=4)
    assert report["load_summary"]["concurrency"] == 4
    assert "requested_rate" not in report["load_summary"]
    with pytest.raises(ValueError):
        lifecycle_metrics([])
