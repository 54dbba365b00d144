from __future__ import annotations

import random

import pytest

from tokenway.config.errors import ConfigError
from tokenway.config.loader import parse_platform
from tokenway.config.pools import PoolSpec, SchedulerSpec
from tokenway.scheduling.factory import build_scheduler
from tokenway.scheduling.framework import ProfileScheduler
from tokenway.scheduling.profiles import PROFILES
from tokenway.scheduling.scorers.prefix_cache import PrefixCacheScorer

from .helpers import endpoint, request


def _pool(**scheduler: object) -> PoolSpec:
    return PoolSpec.model_validate({"name": "p", "scheduler": scheduler})


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_builds_and_schedules(profile: str) -> None:
    sched = build_scheduler(_pool(profile=profile), random.Random(0))
    eps = [endpoint(1), endpoint(2, healthy=False), endpoint(3)]
    decision = sched.schedule(request("x" * 500), eps, 0.0)
    assert sorted(e.url for e in decision.endpoints) == [eps[0].url, eps[2].url]


def test_round_robin_profile_alternates() -> None:
    sched = build_scheduler(_pool(profile="round-robin"))
    eps = [endpoint(1), endpoint(2)]
    picks = [sched.schedule(request(), eps, 0.0).endpoints[0].url for _ in range(4)]
    assert picks == [eps[0].url, eps[1].url, eps[0].url, eps[1].url]


def test_least_in_flight_profile_picks_least_busy() -> None:
    sched = build_scheduler(_pool(profile="least-in-flight"), random.Random(0))
    eps = [endpoint(1, in_flight=3), endpoint(2, in_flight=1), endpoint(3, in_flight=2)]
    decision = sched.schedule(request(), eps, 0.0)
    assert [e.url for e in decision.endpoints] == [eps[1].url, eps[2].url, eps[0].url]


def test_default_profile_has_reference_weights() -> None:
    sched = build_scheduler(_pool())
    assert isinstance(sched, ProfileScheduler)
    weights = {w.scorer.type_name: w.weight for w in sched.profile.scorers}
    assert weights == {"queue": 2, "kv-cache": 2, "prefix-cache": 3}
    assert sched.profile.picker.type_name == "max-score"


def test_scorer_overrides_merge_and_zero_removes() -> None:
    sched = build_scheduler(_pool(scorers={"queue": 5, "prefix-cache": 0, "lora-affinity": 1}))
    assert isinstance(sched, ProfileScheduler)
    weights = {w.scorer.type_name: w.weight for w in sched.profile.scorers}
    assert weights == {"queue": 5, "kv-cache": 2, "lora-affinity": 1}


def test_explain_names_every_scorer() -> None:
    sched = build_scheduler(_pool(), random.Random(0))
    decision = sched.schedule(request("x" * 500), [endpoint(1, kv=0.5)], 0.0, explain=True)
    assert decision.scores == {
        endpoint(1).url: {"queue": 1.0, "kv-cache": 0.5, "prefix-cache": 0.0, "total": 3.0}
    }


BAD = """\
pools:
  - name: p
    scheduler:
      profile: tokenway
      scorers: {queue: 1, prefx-cache: 2}
      picker: best
      filters: [healthy, nope]
      params:
        prefix-cache: {blockSizeTokens: 0}
        load-guard: {slak: 1}
  - name: q
    scheduler:
      profile: fastest
  - name: r
    scheduler:
      profile: round-robin
      params: {prefix-cache: {blockSizeTokens: 32}}
"""


def test_config_errors_name_line_field_and_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_platform(BAD, "platform.yaml")
    rendered = "\n".join(str(issue) for issue in info.value.issues)
    assert "platform.yaml:5: pools[0].scheduler.scorers: " in rendered
    assert "unknown scorer 'prefx-cache'; known: in-flight" in rendered
    assert "platform.yaml:6: pools[0].scheduler.picker: " in rendered
    assert "unknown picker 'best'" in rendered
    assert "platform.yaml:7: pools[0].scheduler.filters: " in rendered
    assert "platform.yaml:8: pools[0].scheduler.params: " in rendered
    assert "blockSizeTokens" in rendered
    assert "slak" in rendered
    assert "platform.yaml:13: pools[1].scheduler.profile: " in rendered
    assert "unknown scheduling profile 'fastest'" in rendered
    assert "platform.yaml:15: pools[2].scheduler: " in rendered
    assert "does not use: ['prefix-cache']" in rendered


def test_build_scheduler_rejects_unvalidated_specs() -> None:
    spec = SchedulerSpec.model_construct(profile="default", scorers={"nope": 1.0})
    pool = PoolSpec.model_construct(name="p", scheduler=spec)
    with pytest.raises(ValueError, match="unknown scorer 'nope'"):
        build_scheduler(pool)


def test_overriding_one_parameter_keeps_the_profiles_others() -> None:
    spec = PoolSpec.model_validate(
        {
            "name": "p",
            "scheduler": {
                "profile": "tokenway",
                "params": {"prefix-cache": {"lruCapacityPerServer": 50000}},
            },
        }
    )
    scheduler = build_scheduler(spec, random.Random(1))
    prefix = next(
        w.scorer for w in scheduler.profile.scorers if isinstance(w.scorer, PrefixCacheScorer)
    )
    assert prefix.params.block_size_tokens == 64  # the profile's, kept
    assert prefix.params.lru_capacity_per_server == 50000


@pytest.mark.parametrize("weight", [".nan", ".inf"])
def test_weights_must_be_finite(weight: str) -> None:
    with pytest.raises(ConfigError, match="weight must be a number"):
        parse_platform(f"pools: [{{name: p, scheduler: {{scorers: {{queue: {weight}}}}}}}]\n")
