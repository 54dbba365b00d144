from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenway.scheduling import registry
from tokenway.scheduling.normalise import inverted_min_max
from tokenway.scheduling.scheduler import Outcome

from .helpers import endpoint, request

SCORERS = registry.names("scorer")

endpoints_strategy = st.lists(
    st.builds(
        lambda i, w, kv, f, t, lo: endpoint(
            i,
            waiting=w,
            kv=kv,
            in_flight=f,
            in_flight_tokens=t,
            max_loras=lo,
            running_loras=frozenset({"a", "b"}) if lo > 1 else frozenset(),
        ),
        st.integers(0, 250),
        st.integers(0, 10_000),
        st.floats(0, 1),
        st.integers(0, 1000),
        st.integers(0, 10**7),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda e: e.url,
)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(SCORERS),
    endpoints=endpoints_strategy,
    prompt=st.text(max_size=600),
    adapter=st.sampled_from([None, "a", "c"]),
)
def test_every_scorer_gives_one_score_in_range_per_endpoint(
    name: str, endpoints: list, prompt: str, adapter: str | None
) -> None:
    scorer = registry.build_plugin(name, "scorer", None)
    req = request(prompt, adapter=adapter, session_id="s")
    scores = scorer.score(req, endpoints, 0.0)
    assert len(scores) == len(endpoints)
    assert all(0.0 <= s <= 1.0 for s in scores)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=50))
def test_inverted_min_max_ranks_least_loaded_first(values: list[int]) -> None:
    scores = inverted_min_max(values)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[values.index(min(values))] == 1.0
    if len(set(values)) > 1:
        assert scores[values.index(max(values))] == 0.0
    for a, b in zip(values, scores, strict=True):
        for c, d in zip(values, scores, strict=True):
            if a < c:
                assert b > d


def test_queue_and_kv_follow_the_reference_formulas() -> None:
    eps = [endpoint(1, waiting=0, kv=0.25), endpoint(2, waiting=4, kv=1.0), endpoint(3, waiting=2)]
    queue = registry.build_plugin("queue", "scorer", None)
    kv = registry.build_plugin("kv-cache", "scorer", None)
    assert queue.score(request(), eps, 0.0) == [1.0, 0.0, 0.5]
    assert kv.score(request(), eps, 0.0) == [0.75, 0.0, 1.0]
    assert queue.score(request(), [endpoint(1, waiting=3), endpoint(2, waiting=3)], 0.0) == [
        1.0,
        1.0,
    ]


def test_in_flight_scorers_use_gateway_counts() -> None:
    eps = [
        endpoint(1, in_flight=4, in_flight_tokens=100),
        endpoint(2, in_flight=0, in_flight_tokens=900),
    ]
    assert registry.build_plugin("in-flight", "scorer", None).score(request(), eps, 0.0) == [
        0.0,
        1.0,
    ]
    tokens = registry.build_plugin("in-flight-tokens", "scorer", None)
    assert tokens.score(request(), eps, 0.0) == [1.0, 0.0]


def test_session_affinity_returns_to_the_last_endpoint() -> None:
    scorer = registry.build_plugin("session-affinity", "scorer", {"maxSessions": 1})
    eps = [endpoint(1), endpoint(2)]
    assert scorer.score(request(session_id="s1"), eps, 0.0) == [0.0, 0.0]
    scorer.picked(request(session_id="s1"), eps[1], 0.0)
    assert scorer.score(request(session_id="s1"), eps, 0.0) == [0.0, 1.0]
    scorer.picked(request(session_id="s2"), eps[0], 0.0)
    # Capacity 1: the older session is forgotten.
    assert scorer.score(request(session_id="s1"), eps, 0.0) == [0.0, 0.0]
    assert scorer.score(request(session_id="s2"), eps, 0.0) == [1.0, 0.0]


def test_session_affinity_follows_the_fallback_that_served() -> None:
    scorer = registry.build_plugin("session-affinity", "scorer", {})
    eps = [endpoint(1), endpoint(2)]
    turn = request(session_id="s")
    scorer.picked(turn, eps[0], 0.0)
    scorer.observe(Outcome(request=turn, endpoint_url=eps[1].url, ok=True))  # the pick failed
    assert scorer.score(request(session_id="s"), eps, 0.0) == [0.0, 1.0]
    scorer.observe(
        Outcome(request=turn, endpoint_url=eps[0].url, ok=False)
    )  # failures teach nothing
    assert scorer.score(request(session_id="s"), eps, 0.0) == [0.0, 1.0]
