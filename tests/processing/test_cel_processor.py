from __future__ import annotations

import pytest

from tokenway.config.errors import ConfigError
from tokenway.gateway.errors import GatewayError

from .helpers import chain_of, chat, request

RULES = """
processors:
  - name: rules
    type: cel
    phase: pre-routing
    rules:
      - name: hot
        when: 'has(body.temperature) && body.temperature > 1.5'
        reject: {status: 400, message: temperature above 1.5 is not allowed}
      - name: long-chats
        when: 'size(body.messages) > 2'
        model: big-model
      - name: tier
        when: 'team == "search" || headers["x-tier"] == "gold"'
        setHeaders: {x-priority: high}
      - name: after-model
        when: 'model == "big-model"'
        setHeaders: {x-routed: "yes"}
"""


async def test_reject_uses_the_rule_message_only() -> None:
    ctx = request(chat("my secret prompt", temperature=1.9), headers={"x-tier": "std"})
    with pytest.raises(GatewayError) as info:
        await chain_of(RULES).run("pre-routing", ctx)
    assert info.value.status == 400
    assert "rule 'hot'" in info.value.message
    assert "secret" not in info.value.body_bytes().decode()


async def test_model_choice_and_headers_apply_in_rule_order() -> None:
    body = {"model": "small", "messages": [{"role": "user", "content": "x"}] * 3}
    ctx = request(body, team="search", headers={"x-tier": "std"})
    await chain_of(RULES).run("pre-routing", ctx)
    assert ctx.model == "big-model" and ctx.body["model"] == "big-model"
    assert ctx.upstream_headers == {"x-priority": "high", "x-routed": "yes"}
    assert ctx.annotations["processor.rules"] == "route rules=long-chats+tier+after-model"


async def test_no_rule_fires_passes() -> None:
    ctx = request(chat("hi", temperature=0.2), headers={"x-tier": "std"})
    await chain_of(RULES).run("pre-routing", ctx)
    assert ctx.model == "m" and ctx.upstream_headers == {}
    assert ctx.annotations["processor.rules"] == "pass"


async def test_missing_field_is_a_processor_error_handled_by_failure_mode() -> None:
    # headers["x-tier"] is absent: CEL raises, so the failure mode decides.
    closed = chain_of(RULES)
    with pytest.raises(GatewayError) as info:
        await closed.run("pre-routing", request(chat("hi")))
    assert info.value.status == 503 and info.value.code == "processor_failed"
    ctx = request(chat("hi"))
    await chain_of(
        RULES.replace("phase: pre-routing", "phase: pre-routing\n    failure: open")
    ).run("pre-routing", ctx)
    assert ctx.annotations["processor.rules"].startswith("error")


def test_invalid_expression_is_a_config_error_with_line() -> None:
    with pytest.raises(ConfigError) as info:
        chain_of(RULES.replace("size(body.messages) > 2", "size(body.messages >"))
    # The line is the processor entry's: the loader cannot map pydantic's `cel` tag to a line.
    assert "platform.yaml:3: processors[0].cel.rules[1].when: Value error, invalid CEL" in str(
        info.value
    )


async def test_non_boolean_result_is_an_error() -> None:
    text = RULES.replace("'size(body.messages) > 2'", "'size(body.messages)'")
    with pytest.raises(GatewayError, match="failed"):
        await chain_of(text).run("pre-routing", request(chat("hi"), headers={"x-tier": "a"}))
