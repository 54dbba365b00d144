from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenway.datalayer.health import Health, HealthPolicy, PassiveHealth

POLICY = HealthPolicy(failure_threshold=3, base_ejection=1.0, max_ejection=8.0)


def fail(health: PassiveHealth, now: float, times: int = 1) -> None:
    for _ in range(times):
        health.failure(now, now, POLICY)


def test_ejected_after_threshold_consecutive_failures_only() -> None:
    health = PassiveHealth()
    fail(health, 0.0, 2)
    health.success(0.0, 0.0)
    fail(health, 0.0, 2)
    assert health.state(0.0) is Health.HEALTHY
    fail(health, 0.0)
    assert health.state(0.0) is Health.EJECTED
    assert health.state(0.999) is Health.EJECTED
    assert health.state(1.0) is Health.PROBING


def test_failed_probes_double_the_backoff_up_to_the_cap_and_a_success_resets_it() -> None:
    health = PassiveHealth()
    fail(health, 0.0, 3)
    now, backoffs = 0.0, []
    for _ in range(5):
        now = health.ejected_until or now
        assert health.state(now) is Health.PROBING
        fail(health, now)
        backoffs.append(health.backoff)
    assert backoffs == [2.0, 4.0, 8.0, 8.0, 8.0]
    now = health.ejected_until or now
    health.success(now, now)
    assert health.state(now) is Health.HEALTHY
    fail(health, now, 3)
    assert health.backoff == 1.0
    assert health.ejections == 7


def test_reports_during_an_ejection_change_nothing() -> None:
    health = PassiveHealth()
    fail(health, 0.0, 3)
    fail(health, 0.5, 10)
    health.success(0.5, 0.5)
    assert (health.state(0.5), health.ejected_until, health.backoff) == (Health.EJECTED, 1.0, 1.0)


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        HealthPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        HealthPolicy(base_ejection=10.0, max_ejection=5.0)


@given(st.lists(st.tuples(st.booleans(), st.floats(0.0, 5.0)), max_size=60))
def test_backoff_stays_within_policy_and_ejection_needs_a_failure(
    events: list[tuple[bool, float]],
) -> None:
    health, now = PassiveHealth(), 0.0
    for ok, step in events:
        now += step
        before = health.state(now)
        if ok:
            health.success(now, now)
        else:
            health.failure(now, now, POLICY)
        after = health.state(now)
        if health.backoff:
            assert POLICY.base_ejection <= health.backoff <= POLICY.max_ejection
        if after is Health.EJECTED and before is not Health.EJECTED:
            assert not ok
        if ok and before is not Health.EJECTED:
            assert after is Health.HEALTHY
