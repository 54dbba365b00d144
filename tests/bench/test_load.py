from __future__ import annotations

import itertools

import pytest

from tokenway.bench.datasets import Synthetic, fixed
from tokenway.bench.load import ConcurrencyStage, RateStage, arrival_times, rate_workload
from tokenway.bench.record import RequestRecord
from tokenway.bench.runner import outcome
from tokenway.bench.sweep import StageOutcome, Sweep, saturation


def test_constant_arrivals_are_evenly_spaced() -> None:
    times = arrival_times(RateStage(rate=4, duration=2, process="constant"), seed=1)
    assert times == [i / 4 for i in range(8)]
    assert len(arrival_times(RateStage(rate=4, count=3, process="constant"), 1)) == 3


def test_poisson_arrivals_have_the_requested_mean_rate() -> None:
    times = arrival_times(RateStage(rate=50, duration=200), seed=2)
    assert len(times) == pytest.approx(10_000, rel=0.05)
    assert times == sorted(times) and times[-1] < 200
    assert times == arrival_times(RateStage(rate=50, duration=200), seed=2)
    assert times != arrival_times(RateStage(rate=50, duration=200), seed=3)


def test_rate_workload_assigns_arrivals_with_offset() -> None:
    stream = Synthetic(input_len=fixed(4), output_len=fixed(2)).stream(0)
    workload = rate_workload(stream, RateStage(rate=10, count=5, process="constant"), 0, 3.0)
    assert [r.arrival for r in workload] == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4])
    assert next(stream) == next(
        itertools.islice(Synthetic(input_len=fixed(4), output_len=fixed(2)).stream(0), 5, None)
    )


@pytest.mark.parametrize("kwargs", [{}, {"duration": 1, "count": 2}, {"count": 0}])
def test_stages_need_exactly_one_positive_bound(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ConcurrencyStage(concurrency=2, **kwargs)  # type: ignore[arg-type]


def test_sweep_rates_and_saturation() -> None:
    sweep = Sweep(start=10, stage_duration=5)
    assert [sweep.rate(i) for i in range(3)] == [10, 20, 40]
    assert Sweep(start=10, stage_duration=5, kind="linear", step=5).rate(2) == 20
    first = StageOutcome(10, 10, 0.1, 0.0)
    assert saturation(sweep, first, StageOutcome(20, 19.5, 0.2, 0.0)) is None
    assert "answered" in (saturation(sweep, first, StageOutcome(40, 30, 0.2, 0.0)) or "")
    assert "median latency" in (saturation(sweep, first, StageOutcome(40, 40, 0.5, 0.0)) or "")
    fast = StageOutcome(10, 10, 0.001, 0.0)
    assert saturation(sweep, fast, StageOutcome(40, 40, 0.004, 0.0)) is None  # jitter, no knee
    assert "failed" in (saturation(sweep, first, StageOutcome(40, 40, 0.1, 0.2)) or "")


def answered_after(latencies: list[float]) -> list[RequestRecord]:
    """One request a second from t=0, each answered after its latency."""
    return [
        RequestRecord(0, "t", "g", "m", float(i), float(i), i + latency)
        for i, latency in enumerate(latencies)
    ]


def test_long_latencies_alone_are_not_saturation() -> None:
    stage = RateStage(rate=1, duration=10, process="constant")
    result = outcome(stage, answered_after([5.0] * 10))
    assert result.offered_rate == pytest.approx(1.0)
    assert result.achieved_rate == pytest.approx(1.0)
    assert saturation(Sweep(start=1, stage_duration=10), result, result) is None


def test_answers_falling_further_behind_are_saturation() -> None:
    stage = RateStage(rate=1, duration=10, process="constant")
    result = outcome(stage, answered_after([1.0 + i for i in range(10)]))
    assert result.achieved_rate == pytest.approx(0.8)  # 8 answered by 10 s + median 5.5 s
    reason = saturation(Sweep(start=1, stage_duration=10), result, result)
    assert reason is not None and reason.startswith("answered 0.8 req/s of 1.0")
