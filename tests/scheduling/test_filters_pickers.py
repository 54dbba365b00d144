from __future__ import annotations

import random
from collections import Counter

from tokenway.config.pools import PoolSpec
from tokenway.scheduling import registry
from tokenway.scheduling.factory import build_scheduler
from tokenway.scheduling.pickers.max_score import MaxScorePicker
from tokenway.scheduling.pickers.round_robin import RoundRobinPicker
from tokenway.scheduling.pickers.weighted_random import WeightedRandomPicker

from .helpers import endpoint, request


def _urls(endpoints: list) -> list[str]:
    return [e.url for e in endpoints]


def test_healthy_filter() -> None:
    eps = [endpoint(1, healthy=False), endpoint(2)]
    assert _urls(registry.build_plugin("healthy", "filter", None).filter(request(), eps)) == [
        eps[1].url
    ]


def test_subset_filter_honours_the_hint() -> None:
    eps = [endpoint(1), endpoint(2)]
    subset = registry.build_plugin("subset", "filter", None)
    assert subset.filter(request(), eps) == eps
    hinted = request(subset=frozenset({"10.0.0.2:8000"}))
    assert _urls(subset.filter(hinted, eps)) == [eps[1].url]
    assert subset.filter(request(subset=frozenset()), eps) == []


def test_model_served_filter_accepts_base_model_for_adapters() -> None:
    eps = [
        endpoint(1, served=frozenset({"base"})),
        endpoint(2, served=frozenset({"other"})),
        endpoint(3),
    ]
    served = registry.build_plugin("model-served", "filter", None)
    assert _urls(served.filter(request(), eps)) == [eps[0].url, eps[2].url]
    assert _urls(served.filter(request(adapter="lora-1"), eps)) == [eps[0].url, eps[2].url]
    assert _urls(served.filter(request(model="other"), eps)) == [eps[1].url, eps[2].url]


def test_load_guard_keeps_endpoints_near_the_least_loaded() -> None:
    guard = registry.build_plugin("load-guard", "filter", {"slack": 2, "ratio": 0.5})
    eps = [endpoint(1, in_flight=10), endpoint(2, in_flight=4), endpoint(3, in_flight=6)]
    assert _urls(guard.filter(request(), eps)) == [eps[1].url, eps[2].url]
    idle = [endpoint(1, in_flight=2), endpoint(2, in_flight=0), endpoint(3, in_flight=3)]
    assert _urls(guard.filter(request(), idle)) == [idle[0].url, idle[1].url]


def test_max_score_orders_by_total_and_breaks_ties_randomly() -> None:
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    picker = MaxScorePicker()
    assert _urls(picker.pick(eps, [0.1, 0.9, 0.5], random.Random(0))) == _urls(
        [eps[1], eps[2], eps[0]]
    )
    rng = random.Random(0)
    firsts = {picker.pick(eps, [1.0, 1.0, 0.0], rng)[0].url for _ in range(50)}
    assert firsts == {eps[0].url, eps[1].url}


def test_weighted_random_prefers_heavier_and_puts_zero_last() -> None:
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    picker = WeightedRandomPicker()
    rng = random.Random(0)
    counts = {e.url: 0 for e in eps}
    for _ in range(2000):
        order = picker.pick(eps, [1.0, 3.0, 0.0], rng)
        assert order[-1].url == eps[2].url
        counts[order[0].url] += 1
    assert 1300 < counts[eps[1].url] < 1700


def test_round_robin_rotates_and_lists_fallbacks() -> None:
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    picker = RoundRobinPicker()
    rng = random.Random(0)
    orders = [_urls(picker.pick(eps, [0, 0, 0], rng)) for _ in range(4)]
    assert [o[0] for o in orders] == [eps[0].url, eps[1].url, eps[2].url, eps[0].url]
    assert orders[1] == [eps[1].url, eps[2].url, eps[0].url]


def test_weighted_random_is_fair_even_with_tiny_totals() -> None:
    picker = WeightedRandomPicker()
    endpoints = [endpoint(i) for i in range(3)]
    rng = random.Random(3)
    firsts = Counter(picker.pick(endpoints, [1e-4] * 3, rng)[0].url for _ in range(3000))
    assert min(firsts.values()) > 800  # about 1,000 each; underflowing keys gave ~80 % to one


def test_panic_keeps_only_endpoints_that_can_serve() -> None:
    scheduler = build_scheduler(PoolSpec.model_validate({"name": "p"}), random.Random(1))
    serves_other = endpoint(1, served=frozenset({"other"}))
    unhealthy_but_serving = endpoint(2, served=frozenset({"base"}), healthy=False)
    decision = scheduler.schedule(request("hi"), [serves_other, unhealthy_but_serving], 0.0)
    assert [e.url for e in decision.endpoints] == [unhealthy_but_serving.url]
