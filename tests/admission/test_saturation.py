from __future__ import annotations

import pytest

from tokenway.admission.saturation import SaturationDetector
from tokenway.config.pools import SaturationSpec
from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot

DETECTOR = SaturationDetector(SaturationSpec())


def snap(waiting: int = 0, kv: float = 0.0, age: float | None = 0.05) -> EndpointSnapshot:
    return EndpointSnapshot(
        url="http://10.0.0.1:8000",
        pool="p",
        metrics=EndpointMetrics(waiting=waiting, kv_usage=kv),
        metrics_age=age,
    )


@pytest.mark.parametrize(
    ("waiting", "kv", "expected"),
    [(0, 0.0, 0.0), (5, 0.0, 1.0), (2, 0.4, 0.5), (1, 0.8, 1.0), (10, 0.2, 2.0)],
)
def test_endpoint_saturation_is_max_of_queue_and_kv(
    waiting: int, kv: float, expected: float
) -> None:
    assert DETECTOR.endpoint(snap(waiting, kv)) == pytest.approx(expected)


def test_stale_or_never_scraped_metrics_count_as_saturated() -> None:
    assert DETECTOR.endpoint(snap(age=0.5)) == 1.0
    assert DETECTOR.endpoint(snap(age=None)) == 1.0
    assert DETECTOR.endpoint(snap(age=0.2)) == 0.0
    assert DETECTOR.pool([snap(age=3.0), snap(age=3.0)]) >= 1.0


def test_pool_saturation_is_the_mean() -> None:
    assert DETECTOR.pool([snap(waiting=10), snap()]) == pytest.approx(1.0)
    assert DETECTOR.pool([snap(waiting=5), snap(), snap()]) == pytest.approx(1 / 3)
    assert DETECTOR.pool([]) == 1.0


def test_thresholds_come_from_the_pool() -> None:
    detector = SaturationDetector(SaturationSpec(queue_depth=10, kv_cache=0.5, stale_after=2.0))
    assert detector.endpoint(snap(waiting=5, kv=0.2, age=1.0)) == pytest.approx(0.5)
    assert detector.endpoint(snap(kv=0.5)) == pytest.approx(1.0)
