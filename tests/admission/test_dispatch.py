from __future__ import annotations

from tokenway.admission.dispatch import Verdict
from tokenway.admission.factory import build_dispatcher
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot


def snaps(waiting: int, count: int = 2, age: float = 0.05) -> list[EndpointSnapshot]:
    return [
        EndpointSnapshot(
            url=f"http://10.0.0.{i}:8000",
            pool="p",
            metrics=EndpointMetrics(waiting=waiting),
            metrics_age=age,
        )
        for i in range(count)
    ]


IDLE = snaps(0)
BUSY = snaps(5)


def pool(**flow: object) -> PoolSpec:
    return PoolSpec.model_validate({"name": "p", "flowControl": flow})


def test_only_sheddable_requests_are_shed_and_only_while_saturated() -> None:
    d = build_dispatcher(pool())
    assert d.arrive("a", -1, "t", IDLE, 0.0) is Verdict.ADMIT
    assert d.arrive("b", -1, "t", BUSY, 0.0) is Verdict.SHED
    assert d.arrive("c", 0, "t", BUSY, 0.0) is Verdict.QUEUED
    assert d.arrive("d", 3, "t", BUSY, 0.0) is Verdict.QUEUED
    assert d.arrive("e", -1, "t", snaps(0, age=1.0), 0.0) is Verdict.SHED  # stale = saturated


def test_without_flow_control_saturation_only_sheds() -> None:
    d = build_dispatcher(pool(enabled=False))
    assert d.arrive("a", 0, "t", BUSY, 0.0) is Verdict.ADMIT
    assert d.arrive("b", -2, "t", BUSY, 0.0) is Verdict.SHED


def test_dispatch_is_paused_while_saturated_and_resumes_in_priority_order() -> None:
    d = build_dispatcher(pool())
    d.arrive("low", 0, "t", BUSY, 0.0)
    d.arrive("high", 1, "t", BUSY, 0.1)
    assert d.pump(BUSY, 1.0).dispatched == []
    # Newcomers queue behind waiting requests even if the pool looks free.
    assert d.arrive("late", 1, "t", IDLE, 1.0) is Verdict.QUEUED
    result = d.pump(IDLE, 1.1)
    assert [item.key for item in result.dispatched] == ["high", "late", "low"]


def test_one_pump_releases_only_what_the_pool_has_room_for() -> None:
    d = build_dispatcher(pool())
    for i in range(20):
        d.arrive(f"r{i}", 0, "t", BUSY, 0.0)
    # Two endpoints, queue depth 5: room for 10 waiting requests before saturation 1.0.
    assert len(d.pump(IDLE, 1.0).dispatched) == 10
    assert len(d.pump(snaps(2), 1.1).dispatched) == 6


def test_queue_full_and_ttl() -> None:
    d = build_dispatcher(pool(maxQueuedPerBand=1, queueTtl="2s"))
    assert d.arrive("a", 0, "t", BUSY, 0.0) is Verdict.QUEUED
    assert d.arrive("b", 0, "u", BUSY, 0.5) is Verdict.QUEUE_FULL
    assert d.pump(BUSY, 1.9).expired == []
    result = d.pump(BUSY, 2.0)
    assert [item.key for item in result.expired] == ["a"]
    assert result.dispatched == []


def test_fairness_under_overload_neither_tenant_starves() -> None:
    d = build_dispatcher(pool(maxQueuedPerBand=10_000))
    for i in range(300):
        d.arrive(f"big-{i}", 0, "big", BUSY, 0.0)
    for i in range(30):
        d.arrive(f"small-{i}", 0, "small", BUSY, 0.0)
    served: list[str] = []
    for step in range(6):
        served += [item.key for item in d.pump(IDLE, 1.0 + step).dispatched]
    small = sum(key.startswith("small") for key in served)
    big = sum(key.startswith("big") for key in served)
    assert small == 30 and big == 30


def test_queued_sheddable_requests_are_shed_once_the_pool_saturates() -> None:
    d = build_dispatcher(pool())
    assert d.arrive("first", 0, "t", BUSY, 0.0) is Verdict.QUEUED
    # Below saturation, but others wait: a sheddable request queues behind them.
    assert d.arrive("sheddable", -1, "t", IDLE, 0.1) is Verdict.QUEUED
    result = d.pump(BUSY, 0.2)
    assert [item.key for item in result.shed] == ["sheddable"]
    assert result.dispatched == [] and [item.key for item in d.queues] == ["first"]
