from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenway.config.models import ModelSpec, Target
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.router import ModelRouter


def test_single_forms_resolve() -> None:
    router = ModelRouter(
        [
            ModelSpec(name="Chat", pool="p", model="base"),
            ModelSpec(name="support", pool="p", adapter="support-lora", priority=1),
            ModelSpec(name="plain", pool="p"),
        ]
    )
    rng = random.Random(0)
    assert router.resolve("chat", rng).upstream_model == "base"
    support = router.resolve("support", rng)
    assert (support.upstream_model, support.adapter, support.priority) == (
        "support-lora",
        "support-lora",
        1,
    )
    assert router.resolve("plain", rng).upstream_model == "plain"


def test_lookalike_spellings_resolve_to_the_same_model() -> None:
    router = ModelRouter([ModelSpec(name="chat", pool="p", model="base")])
    # Fullwidth letters normalise (NFKC) to the configured name instead of escaping it.
    assert router.resolve("\uff43\uff48\uff41\uff54", random.Random(0)).public_model == "chat"


def test_unknown_model_is_404() -> None:
    with pytest.raises(GatewayError) as info:
        ModelRouter([]).resolve("x", random.Random(0))
    assert info.value.status == 404 and info.value.code == "model_not_found"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=99), st.integers(min_value=0, max_value=2**31))
def test_weighted_split_follows_weights(weight: int, seed: int) -> None:
    spec = ModelSpec(
        name="m",
        pool="p",
        targets=[Target(model="a", weight=weight), Target(model="b", weight=100 - weight)],
    )
    router, rng, n = ModelRouter([spec]), random.Random(seed), 4000
    hits = sum(router.resolve("m", rng).upstream_model == "a" for _ in range(n))
    expected = n * weight / 100
    sigma = (n * (weight / 100) * (1 - weight / 100)) ** 0.5
    assert abs(hits - expected) <= 5 * sigma + 1


def test_zero_weight_targets_never_chosen() -> None:
    spec = ModelSpec(
        name="m", pool="p", targets=[Target(model="a", weight=0), Target(model="b", weight=1)]
    )
    rng = random.Random(1)
    assert {ModelRouter([spec]).resolve("m", rng).upstream_model for _ in range(100)} == {"b"}
