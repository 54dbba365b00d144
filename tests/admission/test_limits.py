from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tokenway.admission.limits.factory import build_limiter
from tokenway.admission.limits.limiter import STORE_RETRY_S, Limiter
from tokenway.admission.limits.memory_store import MemoryStore
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.admission.limits.store import SlotOp, StoreUnavailable, Verdict
from tokenway.auth.principal import ANONYMOUS, Principal
from tokenway.config.loader import parse_platform
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.context import InboundRequest, RequestContext, Route, Usage
from tokenway.gateway.errors import GatewayError

T0 = 1_800_000_000.0  # a minute boundary
SEARCH = Principal(team="search", method="api-key", key_id="ci")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctx(
    principal: Principal = SEARCH,
    model: str = "chat",
    max_tokens: int | None = 100,
    prompt: int = 20,
    request_id: str = "r",
) -> RequestContext:
    return RequestContext(
        request_id=request_id,
        operation="chat",
        inbound=InboundRequest("POST", "/v1/chat/completions", {}, b""),
        body={},
        received_at=0.0,
        model=model,
        max_tokens=max_tokens,
        prompt_tokens_estimate=prompt,
        principal=principal,
        route=Route(model, "pool", model, None, 0),
    )


def limiter(team: dict[str, Any], clock: Clock, **extra: Any) -> tuple[Limiter, CollectorRegistry]:
    config = {"teams": [{"name": "search"} | team]} | extra
    registry = CollectorRegistry()
    return build_limiter(
        parse_platform(yaml.safe_dump(config)), clock, UsageMetrics(registry)
    ), registry


async def refused(lim: Limiter, context: RequestContext) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await lim.reserve(context)
    assert caught.value.status == 429
    return caught.value


async def test_no_teams_means_no_limits() -> None:
    lim = build_limiter(PlatformConfig(), Clock())
    for _ in range(100):
        reservation = await lim.reserve(ctx(ANONYMOUS, max_tokens=10**6))
        assert reservation.headers() == {}
        await reservation.settle(Usage(10, 10))


async def test_tokens_admitted_on_estimate_and_settled_on_actual_usage() -> None:
    clock = Clock()
    lim, registry = limiter({"limits": [{"tokens": 1000, "per": "minute"}]}, clock)
    first = await lim.reserve(ctx(max_tokens=400, prompt=100))  # holds 500
    assert first.headers()["x-ratelimit-remaining-tokens"] == "500"
    second = await lim.reserve(ctx(max_tokens=400, prompt=100))  # holds 1000
    assert second.headers()["x-ratelimit-remaining-tokens"] == "0"
    error = await refused(lim, ctx(max_tokens=1, prompt=0))
    assert error.headers["Retry-After"] == "60"
    assert error.headers["x-ratelimit-remaining-tokens"] == "0"
    assert error.code == "tokens_limit_exceeded"
    await first.settle(Usage(100, 50))  # frees 350
    await first.settle(Usage(100, 400))  # a second settle changes nothing
    third = await lim.reserve(ctx(max_tokens=300, prompt=50))
    assert third.headers()["x-ratelimit-remaining-tokens"] == "0"
    assert (
        registry.get_sample_value(
            "tokenway_team_tokens_total", {"team": "search", "model": "chat", "type": "output"}
        )
        == 50
    )
    assert (
        registry.get_sample_value(
            "tokenway_limit_rejections_total",
            {"team": "search", "model": "chat", "reason": "tokens"},
        )
        == 1
    )


async def test_window_rolls_over_and_reset_header_counts_down() -> None:
    clock = Clock(T0 + 45)
    lim, _ = limiter({"limits": [{"tokens": 100, "per": "minute"}]}, clock)
    held = await lim.reserve(ctx(max_tokens=90, prompt=10))
    assert held.headers()["x-ratelimit-reset-tokens"] == "15s"
    assert (await refused(lim, ctx(max_tokens=1, prompt=0))).headers["Retry-After"] == "15"
    clock.now = T0 + 60
    assert (await lim.reserve(ctx(max_tokens=90, prompt=10))).headers()[
        "x-ratelimit-remaining-tokens"
    ] == "0"
    # settling the old window's reservation does not touch the new window
    await held.settle(Usage(10, 0))
    await refused(lim, ctx(max_tokens=1, prompt=0))


@pytest.mark.parametrize(
    ("usage", "charged"),
    [
        (Usage(20, 100), 120),  # completed
        (Usage(20, 37), 57),  # stream cut: client gone or upstream died after 37 tokens
        (None, 0),  # failed before anything was generated
        (Usage(20, 0), 20),  # failed after the prompt was processed
    ],
)
async def test_settle_charges_exactly_what_was_generated(usage: Usage | None, charged: int) -> None:
    lim, _ = limiter({"limits": [{"tokens": 10_000, "per": "hour"}]}, Clock())
    reservation = await lim.reserve(ctx(max_tokens=100, prompt=20))
    await reservation.settle(usage)
    report = await lim.usage("search", ["chat"])
    assert report["limits"][0]["used"] == charged  # type: ignore[index]


async def test_input_output_counts_and_cel_cost() -> None:
    limits = [
        {"tokens": 1000, "count": "input"},
        {"tokens": 1000, "count": "output"},
        {"tokens": 10_000, "cost": "input_tokens + 2 * output_tokens - cached_input_tokens"},
    ]
    lim, _ = limiter({"limits": limits}, Clock())
    reservation = await lim.reserve(ctx(max_tokens=100, prompt=30))
    await reservation.settle(Usage(30, 10, cached_tokens=5))
    used = [row["used"] for row in (await lim.usage("search", []))["limits"]]  # type: ignore[union-attr, index]
    assert used == [30, 10, 30 + 20 - 5]


async def test_requests_per_minute_and_headers_move_with_every_request() -> None:
    lim, _ = limiter({"limits": [{"requests": 3, "per": "minute"}]}, Clock())
    remaining = []
    for n in range(3):
        reservation = await lim.reserve(ctx(request_id=str(n)))
        remaining.append(reservation.headers()["x-ratelimit-remaining-requests"])
        await reservation.settle(Usage(1, 1))
    assert remaining == ["2", "1", "0"]
    error = await refused(lim, ctx())
    assert error.code == "requests_limit_exceeded" and error.headers["Retry-After"] == "60"


async def test_concurrency_slots_are_released_on_settle() -> None:
    lim, _ = limiter({"limits": [{"concurrent": 2}]}, Clock())
    a, b = await lim.reserve(ctx(request_id="a")), await lim.reserve(ctx(request_id="b"))
    error = await refused(lim, ctx(request_id="c"))
    assert error.headers["Retry-After"] == "1" and error.code == "concurrent_limit_exceeded"
    await a.settle(None)
    c = await lim.reserve(ctx(request_id="c"))
    await asyncio.gather(b.settle(Usage(1, 1)), c.settle(Usage(1, 1)))
    report = await lim.usage("search", [])
    assert report["limits"][0]["used"] == 0  # type: ignore[index]


async def test_concurrency_slots_of_a_vanished_replica_expire_after_the_lease() -> None:
    clock = Clock()
    lim, _ = limiter({"limits": [{"concurrent": 1}]}, clock, limitsStore={"lease": "30s"})
    await lim.reserve(ctx(request_id="lost"))
    await refused(lim, ctx())
    clock.now += 31
    await lim.reserve(ctx())


async def test_money_budget_uses_the_price_table() -> None:
    clock = Clock()
    lim, registry = limiter(
        {"budget": {"amount": 1.0, "currency": "EUR", "per": "month"}},
        clock,
        prices={"chat": {"input": 1000.0, "output": 2000.0}},  # per 1M tokens
    )
    reservation = await lim.reserve(ctx(max_tokens=200, prompt=100))  # estimate 0.5 EUR
    await reservation.settle(Usage(100, 150))  # 0.1 + 0.3 = 0.4 EUR
    row = (await lim.usage("search", []))["limits"][0]  # type: ignore[index]
    assert row["used"] == pytest.approx(0.4) and row["max"] == 1.0
    assert registry.get_sample_value(
        "tokenway_team_cost_total", {"team": "search", "model": "chat", "currency": "EUR"}
    ) == pytest.approx(0.4)
    await (await lim.reserve(ctx(max_tokens=250, prompt=100))).settle(Usage(100, 250))  # 0.6
    error = await refused(lim, ctx(max_tokens=10, prompt=10))
    assert error.code == "budget_limit_exceeded"
    assert int(error.headers["Retry-After"]) > 86400  # the calendar month


async def test_a_request_larger_than_the_limit_says_so() -> None:
    lim, _ = limiter({"limits": [{"tokens": 100}]}, Clock())
    error = await refused(lim, ctx(max_tokens=500))
    assert "lower max_tokens" in error.message


async def test_default_max_tokens_and_prompt_factor_shape_the_estimate() -> None:
    lim, _ = limiter(
        {"limits": [{"tokens": 10_000}]},
        Clock(),
        limitsStore={"estimate": {"promptFactor": 1.5, "defaultMaxTokens": 64}},
    )
    reservation = await lim.reserve(ctx(max_tokens=None, prompt=100))
    assert reservation.headers()["x-ratelimit-remaining-tokens"] == str(10_000 - 150 - 64)


async def test_scopes_key_user_and_model_have_their_own_counters() -> None:
    limits = [
        {"tokens": 100, "scope": "key"},
        {"tokens": 100, "scope": "user"},
        {"tokens": 100, "scope": "model", "models": ["chat*"]},
    ]
    lim, _ = limiter({"limits": limits}, Clock())
    alice = Principal(team="search", user="alice", key_id="k1")
    bob = Principal(team="search", user="bob", key_id="k2")
    await lim.reserve(ctx(alice, "chat", max_tokens=90, prompt=0))
    await refused(lim, ctx(alice, "chat-large", max_tokens=20, prompt=0))  # same key and user
    await lim.reserve(ctx(bob, "chat", max_tokens=9, prompt=0))  # chat has 10 left
    await lim.reserve(ctx(bob, "other", max_tokens=90, prompt=0))  # no model limit on "other"


async def test_cost_variables_must_be_known_at_load_time() -> None:
    from tokenway.config.errors import ConfigError

    bad = {"teams": [{"name": "x", "limits": [{"tokens": 1, "cost": "prompt_tokens * 2"}]}]}
    with pytest.raises(ConfigError, match="unknown variables"):
        parse_platform(yaml.safe_dump(bad))
    bad["teams"][0]["limits"][0]["cost"] = "output_tokens * 1.5"  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"double\(x\)"):
        parse_platform(yaml.safe_dump(bad))


async def test_usage_report_of_an_unknown_team_is_404() -> None:
    lim, _ = limiter({"limits": [{"tokens": 100}]}, Clock())
    with pytest.raises(GatewayError) as caught:
        await lim.usage("nobody", [])
    assert caught.value.status == 404


class FlakyStore(MemoryStore):
    """Fails the next reserve; with `applied`, after taking it (a reply that came too late)."""

    __slots__ = ("applied", "fail_next")

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False
        self.applied = False

    async def reserve(self, *args: Any, **kwargs: Any) -> Verdict:
        if not self.fail_next:
            return await super().reserve(*args, **kwargs)
        self.fail_next = False
        if self.applied:
            await super().reserve(*args, **kwargs)
        raise StoreUnavailable("redis: TimeoutError")


def flaky_limiter(team: dict[str, Any], clock: Clock) -> tuple[Limiter, FlakyStore]:
    store = FlakyStore()
    config = parse_platform(yaml.safe_dump({"teams": [{"name": "search"} | team]}))
    return build_limiter(config, clock, UsageMetrics(CollectorRegistry()), store), store


async def test_a_store_blip_does_not_skip_the_settles_that_follow() -> None:
    clock = Clock()
    lim, store = flaky_limiter({"limits": [{"concurrent": 2}, {"tokens": 10_000}]}, clock)
    a, b = await lim.reserve(ctx(request_id="a")), await lim.reserve(ctx(request_id="b"))
    store.fail_next = True
    assert not (await lim.reserve(ctx(request_id="c"))).reserved  # failed open
    clock.now += 0.5  # still inside the back-off
    await a.settle(Usage(20, 10))
    await b.settle(Usage(20, 10))
    used = [limit["used"] for limit in (await lim.usage("search", []))["limits"]]  # type: ignore[union-attr]
    assert used == [0, 60]  # both slots free, exactly the usage counted


async def test_slots_taken_by_a_reserve_that_timed_out_are_freed() -> None:
    clock = Clock()
    lim, store = flaky_limiter({"limits": [{"concurrent": 1}]}, clock)
    store.fail_next = store.applied = True
    late = await lim.reserve(ctx(request_id="late"))
    assert not late.reserved
    await late.settle(Usage(1, 1))
    clock.now += STORE_RETRY_S
    await lim.reserve(ctx(request_id="next"))  # the one slot is free again


async def test_a_cost_that_divides_by_zero_charges_total_tokens() -> None:
    clock = Clock()
    cost = {"tokens": 10_000, "cost": "input_tokens / cached_input_tokens"}
    lim, _ = limiter({"limits": [cost, {"concurrent": 1}]}, clock)
    reservation = await lim.reserve(ctx(prompt=20, max_tokens=100))
    assert reservation.reserved
    await reservation.settle(Usage(20, 10))
    used = [limit["used"] for limit in (await lim.usage("search", []))["limits"]]  # type: ignore[union-attr]
    assert used == [30, 0]


async def test_the_memory_store_forgets_released_and_expired_slots() -> None:
    store = MemoryStore()
    for i in range(100):
        await store.reserve([], [SlotOp(f"slot:{i}", 1, T0 + 30)], f"h{i}", T0)
    for i in range(50):
        await store.settle([], [f"slot:{i}"], f"h{i}")
    await store.reserve([], [], "sweeper", T0 + 3600)  # a sweep after every lease ended
    assert await store.read([], [f"slot:{i}" for i in range(100)], T0 + 3600) == (0,) * 100
    assert len(store._slots) == 0


async def test_a_request_the_gateway_refused_gives_everything_back() -> None:
    lim, _ = limiter({"limits": [{"requests": 2, "per": "minute"}, {"tokens": 1000}]}, Clock())
    refused_by_admission = await lim.reserve(ctx(request_id="shed"))
    await refused_by_admission.cancel()
    served = await lim.reserve(ctx(request_id="served"))
    await served.settle(Usage(20, 5))
    used = [limit["used"] for limit in (await lim.usage("search", []))["limits"]]  # type: ignore[union-attr]
    assert used == [1, 25]  # only the served request counts
