from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.filters.healthy import HealthyFilter
from tokenway.scheduling.framework import Profile, ProfileScheduler, WeightedScorer
from tokenway.scheduling.pickers.max_score import MaxScorePicker
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.scheduling.scorers.kv_cache import KvCacheScorer

from .helpers import endpoint, request


class Fixed:
    """A scorer returning given values, to exercise the framework's clamping."""

    type_name = "fixed"

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        return self.values[: len(endpoints)]


class Recorder(Fixed):
    def __init__(self, values: list[float]) -> None:
        super().__init__(values)
        self.picks: list[str] = []
        self.outcomes: list[Outcome] = []

    def picked(self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float) -> None:
        self.picks.append(endpoint.url)

    def observe(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def scheduler(*scorers: tuple[object, float]) -> ProfileScheduler:
    profile = Profile(
        "t",
        (HealthyFilter(),),
        tuple(WeightedScorer(s, w) for s, w in scorers),  # type: ignore[arg-type]
        MaxScorePicker(),
    )
    return ProfileScheduler(profile, random.Random(1))


def test_scores_are_clamped_weighted_and_explained() -> None:
    eps = [endpoint(1), endpoint(2), endpoint(3, kv=0.5)]
    sched = scheduler((Fixed([7.0, -3.0, float("nan")]), 2.0), (KvCacheScorer(), 1.0))
    decision = sched.schedule(request(), eps, 0.0, explain=True)
    assert decision.scores is not None
    assert decision.scores[eps[0].url] == {"fixed": 1.0, "kv-cache": 1.0, "total": 3.0}
    assert decision.scores[eps[1].url] == {"fixed": 0.0, "kv-cache": 1.0, "total": 1.0}
    assert decision.scores[eps[2].url] == {"fixed": 0.0, "kv-cache": 0.5, "total": 0.5}
    assert [e.url for e in decision.endpoints] == [eps[0].url, eps[1].url, eps[2].url]


def test_no_scores_without_explain() -> None:
    decision = scheduler((KvCacheScorer(), 1.0)).schedule(request(), [endpoint(1)], 0.0)
    assert decision.scores is None
    assert decision.primary is not None and decision.primary.url == endpoint(1).url


def test_no_endpoints_is_an_empty_decision() -> None:
    decision = scheduler().schedule(request(), [], 0.0)
    assert decision.endpoints == () and decision.primary is None


def test_when_none_is_healthy_all_are_tried() -> None:
    eps = [endpoint(1, healthy=False), endpoint(2, healthy=False)]
    assert {e.url for e in scheduler().schedule(request(), eps, 0.0).endpoints} == {
        e.url for e in eps
    }


def test_wrong_score_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="returned 1 scores for 2 endpoints"):
        scheduler((Fixed([1.0]), 1.0)).schedule(request(), [endpoint(1), endpoint(2)], 0.0)


def test_learners_hear_picks_and_outcomes() -> None:
    recorder = Recorder([0.0, 1.0])
    sched = scheduler((recorder, 1.0))
    eps = [endpoint(1), endpoint(2)]
    sched.schedule(request(), eps, 0.0)
    outcome = Outcome(request(), eps[1].url, ok=True)
    sched.observe(outcome)
    assert recorder.picks == [eps[1].url]
    assert recorder.outcomes == [outcome]
