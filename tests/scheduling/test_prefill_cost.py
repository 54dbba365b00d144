from __future__ import annotations

import pytest

from tokenway.scheduling.scorers.prefill_cost import PrefillCostParams, PrefillCostScorer

from .helpers import endpoint, request

SYSTEM = "s" * 64 * 60


def _scorer(rate: float = 1000.0) -> PrefillCostScorer:
    return PrefillCostScorer(PrefillCostParams(prefill_tokens_per_second=rate))


def test_cold_prompts_spread_by_backlog() -> None:
    scorer = _scorer()
    eps = [endpoint(1), endpoint(2)]
    first = request(SYSTEM, request_id="1")
    assert scorer.score(first, eps, 0.0) == [1.0, 1.0]
    scorer.picked(first, eps[0], 0.0)
    assert scorer.backlog(eps[0].url, 0.0) == pytest.approx(first.prompt_tokens)
    other = request("o" * 64 * 60, request_id="2")
    # A different cold prompt: the idle endpoint is cheaper.
    assert scorer.score(other, eps, 0.0) == [0.0, 1.0]


def test_cache_wins_until_the_backlog_outweighs_it() -> None:
    scorer = _scorer(rate=1000.0)
    eps = [endpoint(1), endpoint(2)]
    scorer.score(request(SYSTEM, request_id="1"), eps, 0.0)
    scorer.picked(request(SYSTEM, request_id="1"), eps[0], 0.0)
    again = request(SYSTEM + "q" * 64, request_id="2")
    # Cached endpoint: 960 tokens of backlog + 16 uncached; the other: 976 to prefill. A tie.
    assert scorer.score(again, eps, 0.0) == [1.0, 1.0]
    # The backlog drains with time, so later the cached endpoint is clearly cheaper.
    assert scorer.score(again, eps, 0.5) == [1.0, 0.0]
    assert scorer.backlog(eps[0].url, 1.0) == 0.0


def test_backlog_makes_a_busy_cached_replica_lose() -> None:
    scorer = _scorer(rate=1.0)  # barely drains: every pick stays in the backlog
    eps = [endpoint(1), endpoint(2)]
    for i in range(3):
        req = request(SYSTEM + str(i) * 64, request_id=f"r{i}")
        scorer.score(req, eps, 0.0)
        scorer.picked(req, eps[0], 0.0)
    assert scorer.score(request(SYSTEM + "x" * 64, request_id="n"), eps, 0.0) == [0.0, 1.0]


def test_profile_shares_one_prefix_index_when_params_agree() -> None:
    from tokenway.scheduling.profiles import resolve

    profile = resolve("tokenway")
    scorers = {w.scorer.type_name: w.scorer for w in profile.scorers}
    assert scorers["prefill-cost"].prefix is scorers["prefix-cache"]
    other = resolve("tokenway", params={"prefill-cost": {"blockSizeTokens": 32}})
    scorers = {w.scorer.type_name: w.scorer for w in other.scorers}
    assert scorers["prefill-cost"].prefix is not scorers["prefix-cache"]
