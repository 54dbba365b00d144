from __future__ import annotations

import json

import pytest

from tokenway.gateway.context import InboundRequest
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.parse import parse_request


def inbound(body: object, path: str = "/v1/chat/completions", **headers: str) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", path, headers, raw)


def test_chat_request_is_parsed() -> None:
    ctx = parse_request(
        inbound(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "hello there"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 7,
            },
            **{"x-gateway-inference-fairness-id": "team-a", "x-request-id": "r1"},
        ),
        0.0,
        1000,
    )
    assert (ctx.operation, ctx.model, ctx.stream, ctx.max_tokens) == ("chat", "m", True, 7)
    assert ctx.client_wants_usage and ctx.fairness_id == "team-a" and ctx.request_id == "r1"
    assert ctx.prompt_text == "<|user|>hello there"
    assert ctx.prompt_tokens_estimate == 5


def test_content_parts_and_completions() -> None:
    parts = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "ab"}]}],
    }
    assert parse_request(inbound(parts), 0, 1000).prompt_text == "<|user|>ab"
    ctx = parse_request(inbound({"model": "m", "prompt": ["a", "b"]}, "/v1/completions"), 0, 1000)
    assert ctx.operation == "completion" and ctx.prompt_text == "ab"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "'model'"),
        ({"model": "m", "messages": []}, 400, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, 400, "role"),
        ({"model": "m", "messages": [{"role": "u"}], "max_tokens": -1}, 400, "max_tokens"),
        ({"model": "m", "messages": [{"role": "u"}], "max_tokens": 10**9}, 400, "max_tokens"),
        ({"model": "m", "messages": [{"role": "u"}], "stream": "yes"}, 400, "stream"),
        ({"model": "m", "messages": [{"role": "u"}], "pad": "x" * 2000}, 413, "exceeds"),
    ],
)
def test_bad_requests_get_clear_errors(body: object, status: int, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_request(inbound(body), 0.0, 1000)
    assert info.value.status == status
    assert fragment in info.value.message
    assert set(info.value.body()["error"]) == {"message", "type", "param", "code"}


def test_unknown_path_is_404() -> None:
    with pytest.raises(GatewayError) as info:
        parse_request(inbound({"model": "m"}, "/v1/nope"), 0.0, 1000)
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("\udcff\udcfe", False), ("x" * 500, False), ("a b\nc", False)],
)
def test_only_sane_client_request_ids_are_kept(given: str, kept: bool) -> None:
    ctx = parse_request(
        inbound({"model": "m", "prompt": "x"}, "/v1/completions", **{"x-request-id": given}),
        0,
        1000,
    )
    assert (ctx.request_id == given) is kept
    assert ctx.request_id.isascii() and ctx.request_id.isprintable()


def test_a_content_part_text_that_is_not_a_string_is_a_400() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    with pytest.raises(GatewayError) as info:
        parse_request(inbound(body), 0, 1000)
    assert info.value.status == 400 and info.value.param == "messages"


@pytest.mark.parametrize(
    ("path", "key", "value", "tokens"),
    [
        ("/v1/completions", "prompt", [9906, 1917, 0], 3),
        ("/v1/completions", "prompt", [[9906, 1917], [42]], 3),
        ("/v1/embeddings", "input", [[1, 2, 3, 4], [5]], 5),
    ],
)
def test_token_id_prompts_are_accepted_and_counted_exactly(
    path: str, key: str, value: object, tokens: int
) -> None:
    ctx = parse_request(inbound({"model": "m", key: value}, path), 0, 1000)
    assert ctx.prompt_tokens_estimate == tokens
