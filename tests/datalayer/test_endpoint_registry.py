from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.datalayer.health import Health, HealthPolicy
from tokenway.datalayer.registry import SLOW_SCRAPES_TOLERATED, EndpointRegistry, PoolStats

A, B, C = "http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> EndpointRegistry:
    registry = EndpointRegistry(clock, HealthPolicy(failure_threshold=2, base_ejection=1.0))
    registry.set_pool("llama", [A, B], "vllm")
    return registry


def by_url(registry: EndpointRegistry, pool: str = "llama") -> dict[str, object]:
    return {snapshot.url: snapshot for snapshot in registry.snapshots(pool)}


def test_snapshots_carry_metrics_age_from_the_clock(
    registry: EndpointRegistry, clock: Clock
) -> None:
    assert [s.metrics_age for s in registry.snapshots("llama")] == [None, None]
    registry.update_metrics(A, EndpointMetrics(waiting=4, kv_usage=0.5))
    clock.now += 0.25
    snapshot = registry.snapshots("llama")[0]
    assert (snapshot.url, snapshot.pool, snapshot.metrics.waiting) == (A, "llama", 4)
    assert snapshot.metrics.scraped_at == 100.0
    assert snapshot.metrics_age == pytest.approx(0.25)
    assert snapshot.is_stale(0.2) and not snapshot.is_stale(0.3)
    assert registry.snapshots("nope") == []


def test_set_pool_keeps_state_of_kept_endpoints(registry: EndpointRegistry) -> None:
    registry.acquire(A, 100)
    registry.update_metrics(A, EndpointMetrics(running=9))
    registry.set_pool("llama", [C, A], "vllm")
    snapshots = registry.snapshots("llama")
    assert [s.url for s in snapshots] == [C, A]
    assert (snapshots[1].in_flight, snapshots[1].in_flight_tokens) == (1, 100)
    assert snapshots[1].metrics.running == 9
    assert [url for url, _ in registry.scrape_targets()] == [A, C]


def test_reports_about_removed_endpoints_are_ignored(registry: EndpointRegistry) -> None:
    sent = registry.acquire(B)
    registry.set_pool("llama", [A], "vllm")
    registry.release(B, 0, sent)
    registry.report_failure(B, sent)
    registry.update_metrics(B, EndpointMetrics())
    assert registry.scrape_failed(B) is False
    registry.set_pool("llama", [A, B], "vllm")
    assert by_url(registry)[B].in_flight == 0  # a re-added endpoint starts afresh


def test_an_endpoint_in_two_pools_is_one_endpoint(registry: EndpointRegistry) -> None:
    registry.set_pool("other", [B, C], "vllm")
    registry.acquire(B)
    assert by_url(registry)[B].in_flight == by_url(registry, "other")[B].in_flight == 1
    registry.remove_pool("llama")
    assert registry.pools() == ["other"]
    assert by_url(registry, "other")[B].in_flight == 1
    assert sorted(url for url, _ in registry.scrape_targets()) == [B, C]
    with pytest.raises(ValueError, match="vllm endpoint in another pool"):
        registry.set_pool("third", [C], "sglang")


def test_unknown_engine_is_rejected(registry: EndpointRegistry) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        registry.set_pool("x", [C], "tgi")


def test_engine_change_resets_metrics_and_readiness(registry: EndpointRegistry) -> None:
    registry.update_metrics(A, EndpointMetrics(waiting=3))
    registry.scrape_failed(A)
    registry.set_pool("llama", [A, B], "openai")
    snapshot = by_url(registry)[A]
    assert snapshot.healthy and snapshot.metrics == EndpointMetrics()
    assert registry.scrape_targets()[0] == (A, "openai")


def test_in_flight_counts_never_go_negative(registry: EndpointRegistry) -> None:
    sent = registry.acquire(A, 10)
    registry.acquire(A, 5)
    registry.release(A, 10, sent)
    assert (by_url(registry)[A].in_flight, by_url(registry)[A].in_flight_tokens) == (1, 5)
    for _ in range(3):
        registry.release(A, 10, sent)
    assert (by_url(registry)[A].in_flight, by_url(registry)[A].in_flight_tokens) == (0, 0)


def test_failed_scrape_makes_unready_until_a_scrape_succeeds(registry: EndpointRegistry) -> None:
    assert by_url(registry)[A].healthy  # ready from the start
    assert registry.scrape_failed(A) is True
    assert registry.scrape_failed(A) is False
    assert not by_url(registry)[A].healthy
    (status,) = [s for s in registry.statuses("llama") if s.url == A]
    assert (status.ready, status.scrape_failures, status.health) == (False, 2, Health.HEALTHY)
    registry.update_metrics(A, EndpointMetrics())
    assert by_url(registry)[A].healthy


def test_ejection_backoff_and_single_trial_probe(registry: EndpointRegistry, clock: Clock) -> None:
    registry.report_failure(A, clock.now)
    assert by_url(registry)[A].healthy
    registry.report_failure(A, clock.now)
    assert not by_url(registry)[A].healthy
    clock.now += 1.0
    assert by_url(registry)[A].healthy  # half-open: one trial
    trial = registry.acquire(A)
    assert not by_url(registry)[A].healthy  # the trial is in flight, nobody else goes there
    registry.report_failure(A, trial)
    registry.release(A, 0, trial)
    clock.now += 1.5
    assert not by_url(registry)[A].healthy  # backoff doubled to 2 s
    clock.now += 0.5
    trial = registry.acquire(A)
    registry.report_success(A, trial)
    registry.release(A, 0, trial)
    assert by_url(registry)[A].healthy
    (status,) = [s for s in registry.statuses("llama") if s.url == A]
    assert (status.health, status.ejections, status.routable) == (Health.HEALTHY, 2, True)


def test_an_abandoned_trial_frees_the_probe(registry: EndpointRegistry, clock: Clock) -> None:
    registry.report_failure(A, clock.now)
    registry.report_failure(A, clock.now)
    clock.now += 1.0
    trial = registry.acquire(A)
    registry.release(A, 0, trial)  # cancelled by the client: no verdict
    assert by_url(registry)[A].healthy


def test_requests_sent_before_an_ejection_neither_end_nor_hold_the_probe(
    registry: EndpointRegistry, clock: Clock
) -> None:
    old_stream = registry.acquire(A)
    clock.now += 0.1
    registry.report_failure(A, clock.now)
    registry.report_failure(A, clock.now)  # ejected for 1 s
    clock.now += 1.5
    assert by_url(registry)[A].healthy  # probing, although the old stream is still open
    registry.report_success(A, old_stream)  # sent before the ejection: stale
    registry.release(A, 0, old_stream)
    (status,) = [s for s in registry.statuses("llama") if s.url == A]
    assert status.health is Health.PROBING
    trial = registry.acquire(A)
    registry.report_success(A, trial)
    registry.release(A, 0, trial)
    (status,) = [s for s in registry.statuses("llama") if s.url == A]
    assert status.health is Health.HEALTHY


def test_pool_stats(registry: EndpointRegistry) -> None:
    assert registry.pool_stats("llama") == PoolStats(2, 2, 0, 0.0, 0.0, 0)
    registry.update_metrics(A, EndpointMetrics(waiting=4, kv_usage=0.2))
    registry.update_metrics(B, EndpointMetrics(waiting=1, kv_usage=0.6))
    registry.scrape_failed(B)
    registry.acquire(A)
    stats = registry.pool_stats("llama")
    assert (stats.endpoints, stats.routable, stats.reporting, stats.in_flight) == (2, 1, 2, 1)
    assert (stats.mean_queue, stats.mean_kv_usage) == (2.5, pytest.approx(0.4))


_urls = st.sampled_from([A, B, C, "http://10.0.0.4:8000", "http://10.0.0.5:8000"])


@given(st.lists(st.lists(_urls, max_size=5), min_size=1, max_size=6))
def test_set_pool_keeps_exactly_the_endpoints_it_keeps(generations: list[list[str]]) -> None:
    registry = EndpointRegistry(Clock())
    expected: dict[str, int] = {}
    for urls in generations:
        for url in expected:
            registry.acquire(url)
            expected[url] += 1
        registry.set_pool("p", urls, "vllm")
        expected = {url: expected.get(url, 0) for url in dict.fromkeys(urls)}
        snapshots = registry.snapshots("p")
        assert [s.url for s in snapshots] == list(expected)
        assert {s.url: s.in_flight for s in snapshots} == expected
        assert sorted(url for url, _ in registry.scrape_targets()) == sorted(expected)


@given(st.lists(st.tuples(st.sampled_from([A, B]), st.booleans(), st.integers(0, 50))))
def test_in_flight_matches_outstanding_acquires(ops: list[tuple[str, bool, int]]) -> None:
    registry = EndpointRegistry(Clock())
    registry.set_pool("p", [A, B], "vllm")
    outstanding: dict[str, list[int]] = {A: [], B: []}
    for url, acquire, tokens in ops:
        if acquire:
            registry.acquire(url, tokens)
            outstanding[url].append(tokens)
        elif outstanding[url]:
            registry.release(url, outstanding[url].pop(), 0.0)
    for snapshot in registry.snapshots("p"):
        assert snapshot.in_flight == len(outstanding[snapshot.url])
        assert snapshot.in_flight_tokens == sum(outstanding[snapshot.url])


def test_servers_without_metrics_are_never_stale() -> None:
    registry = EndpointRegistry(lambda: 100.0)
    registry.set_pool("plain", ["http://127.0.0.1:9"], "openai")
    registry.set_pool("vllm", ["http://127.0.0.1:10"], "vllm")
    assert registry.snapshots("plain")[0].metrics_age == 0.0
    assert registry.snapshots("vllm")[0].metrics_age is None


def test_slow_scrapes_are_tolerated_a_few_times(registry: EndpointRegistry) -> None:
    for _ in range(SLOW_SCRAPES_TOLERATED - 1):
        assert registry.scrape_failed(A, slow=True) is False
        assert by_url(registry)[A].healthy
    assert registry.scrape_failed(A, slow=True) is True
    assert not by_url(registry)[A].healthy
    registry.update_metrics(A, EndpointMetrics())
    assert registry.scrape_failed(A) is True  # a refused connection counts at once
