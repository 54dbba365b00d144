from __future__ import annotations

from tokenway.scheduling.prefix_index import PrefixIndex, block_hashes
from tokenway.scheduling.scheduler import Outcome
from tokenway.scheduling.scorers.prefix_cache import (
    FORGET_AFTER_S,
    PrefixCacheParams,
    PrefixCacheScorer,
)

from .helpers import endpoint, request

A, B, C = "http://a:1", "http://b:1", "http://c:1"


def test_hashes_are_chained_seeded_by_model_and_only_full_blocks() -> None:
    text = "x" * 64 * 3 + "y" * 10
    hashes = block_hashes("m", text, 64, 256)
    assert len(hashes) == 3
    # Identical blocks hash differently by position, because each hash chains the previous one.
    assert len(set(hashes)) == 3
    assert block_hashes("other", text, 64, 256) != hashes
    assert block_hashes("m", text, 64, 2) == hashes[:2]
    assert block_hashes("m", "short", 64, 256) == []


def test_match_counts_consecutive_leading_blocks_only() -> None:
    index = PrefixIndex(capacity=100)
    hashes = [1, 2, 3, 4]
    index.insert(A, hashes)
    index.insert(B, [1, 2])
    index.insert(C, [2, 3, 4])  # holds later blocks but not the first: no prefix match
    assert index.match(hashes, [A, B, C]) == {A: 4, B: 2}
    assert index.match(hashes, [B]) == {B: 2}
    assert index.match([9, 2], [A, B, C]) == {}


def test_lru_eviction_drops_oldest_and_cleans_reverse_map() -> None:
    index = PrefixIndex(capacity=3)
    index.insert(A, [1, 2, 3])
    index.insert(A, [7])  # evicts 3: within a prompt the tail is older than the root
    assert index.size(A) == 3
    assert index.match([1, 2, 3], [A]) == {A: 2}
    index.insert(A, [2])  # touch 2, so 1 is now the least recently used
    index.insert(A, [8])
    assert index.match([1, 2], [A]) == {}
    assert index.match([8], [A]) == {A: 1}
    index.set_capacity(A, 1)
    assert index.match([2], [A]) == {}
    assert index.match([8], [A]) == {A: 1}
    assert index.capacity(B) == 3


def test_scorer_learns_the_chosen_endpoint() -> None:
    scorer = PrefixCacheScorer(PrefixCacheParams())
    eps = [endpoint(1), endpoint(2)]
    system = "s" * 64 * 8
    first = request(system + "q" * 64 * 2, request_id="1")
    assert scorer.score(first, eps, 0.0) == [0.0, 0.0]
    scorer.picked(first, eps[1], 0.0)
    second = request(system + "other question!" * 20, request_id="2")
    scores = scorer.score(second, eps, 0.0)
    assert scores[0] == 0.0
    assert 0.0 < scores[1] < 1.0
    assert scores[1] == 8 / len(block_hashes("base", second.prompt, 64, 256))
    assert scorer.score(first, eps, 0.0) == [0.0, 1.0]


def test_index_trusts_routing_history_over_outcomes() -> None:
    scorer = PrefixCacheScorer(PrefixCacheParams(lru_capacity_per_server=1000))
    ep = endpoint(1)
    req = request("p" * 64 * 40, request_id="x")
    scorer.score(req, [ep], 0.0)
    scorer.picked(req, ep, 0.0)
    scorer.observe(Outcome(req, ep.url, ok=True, prompt_tokens=640, cached_tokens=0))
    assert scorer.score(request("p" * 64 * 40, request_id="y"), [ep], 0.0) == [1.0]
    assert scorer.index.capacity(ep.url) == 1000


def test_a_longer_prompt_keeps_the_shared_root_newest() -> None:
    index = PrefixIndex(capacity=4)
    p, q, r = [1, 2], [3, 4], [5]
    index.insert("a", p)
    index.insert("a", p + q)
    index.insert("a", r)  # one block must go: the tail of P+Q, never its root
    assert index.match(p, ["a"]) == {"a": 2}
    assert index.match(p + q, ["a"]) == {"a": 3}


def test_adapters_do_not_share_the_base_models_or_each_others_blocks() -> None:
    scorer = PrefixCacheScorer(PrefixCacheParams())
    prompt = "shared context " * 40
    base = request(prompt=prompt)
    endpoints = [endpoint(1), endpoint(2)]
    scorer.picked(base, endpoints[0], 0.0)
    for adapter in ("tenant-a", "tenant-b"):
        lora = request(prompt=prompt, adapter=adapter)
        assert scorer.score(lora, endpoints, 0.0) == [0.0, 0.0]
    assert scorer.score(request(prompt=prompt), endpoints, 0.0)[0] == 1.0


def test_forgetting_an_endpoint_frees_its_blocks_and_its_bit() -> None:
    index = PrefixIndex(capacity=10)
    index.insert("a", [1, 2])
    index.insert("b", [1, 3])
    index.forget("a")
    assert index.match([1, 2], ["a", "b"]) == {"b": 1}
    assert index.size("a") == 0 and index.urls() == ["b"]
    index.insert("c", [7])  # takes the freed bit
    assert index.match([7], ["b", "c"]) == {"c": 1} and index.match([1], ["b"]) == {"b": 1}


def test_endpoints_no_decision_offers_for_long_are_forgotten() -> None:
    scorer = PrefixCacheScorer(PrefixCacheParams())
    old, new = endpoint(1), endpoint(2)
    prompt = request(prompt="context " * 40)
    scorer.score(prompt, [old, new], 0.0)
    scorer.picked(prompt, old, 0.0)
    scorer.score(prompt, [new], FORGET_AFTER_S + 1.0)  # the old pod was replaced
    assert scorer.index.urls() == []  # nothing was ever learned for the new one yet
