from __future__ import annotations

import pytest

from tokenway.gateway.errors import GatewayError

from .helpers import chain_of, chat, request

LIMITS = """
processors:
  - name: limits
    type: limits
    maxPromptTokens: 50
    maxMessages: 3
    forbiddenParams: [logit_bias, tools]
    maxTokens: {default: 1000, teams: {search: 100}, onExceed: clamp}
"""


async def test_within_limits_passes_untouched() -> None:
    ctx = request(chat("short", max_tokens=500), team="other")
    await chain_of(LIMITS).run("request", ctx)
    assert ctx.body["max_tokens"] == 500
    assert ctx.annotations["processor.limits"] == "pass"


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (chat("word " * 300), "max-prompt-tokens"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}] * 4},
            "max-messages",
        ),
        (chat("hi", logit_bias={"50256": -100}), "forbidden-param"),
    ],
)
async def test_limits_reject_with_400_naming_the_rule(body: dict[str, object], rule: str) -> None:
    with pytest.raises(GatewayError) as info:
        await chain_of(LIMITS).run("request", request(body))
    assert info.value.status == 400
    assert f"rule '{rule}'" in info.value.message
    assert "word word" not in info.value.message


async def test_team_cap_clamps_max_tokens_and_updates_context() -> None:
    ctx = request(chat("hi", max_tokens=5000), team="search")
    await chain_of(LIMITS).run("request", ctx)
    assert ctx.body["max_tokens"] == 100
    assert ctx.max_tokens == 100


async def test_default_cap_fills_in_a_missing_max_tokens() -> None:
    ctx = request(chat("hi"))
    await chain_of(LIMITS).run("request", ctx)
    assert ctx.body["max_tokens"] == 1000


async def test_max_completion_tokens_is_the_capped_key_when_sent() -> None:
    ctx = request(chat("hi", max_completion_tokens=4000), team="search")
    await chain_of(LIMITS).run("request", ctx)
    assert ctx.body["max_completion_tokens"] == 100
    assert "max_tokens" not in ctx.body


async def test_reject_mode_refuses_an_oversized_max_tokens() -> None:
    chain = chain_of(LIMITS.replace("onExceed: clamp", "onExceed: reject"))
    with pytest.raises(GatewayError, match="max-tokens"):
        await chain.run("request", request(chat("hi", max_tokens=101), team="search"))
    ctx = request(chat("hi"), team="search")
    await chain.run("request", ctx)
    assert ctx.body["max_tokens"] == 100
