"""Stage 1, parse: an inbound OpenAI request -> a RequestContext, or a 400/404/413 error."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

import orjson

from tokenway.gateway.context import InboundRequest, RequestContext
from tokenway.gateway.errors import GatewayError

OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/embeddings": "embedding",
}

CHARS_PER_TOKEN = 4
"""A cheap, engine-independent prompt-length estimate (the simulator tokenizes the same way)."""

MAX_TOKENS_LIMIT = 1_000_000

# Request ids: a random per-process prefix and a counter; unique without a syscall per request.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count()
_MAX_REQUEST_ID = 128


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def request_id(headers: Mapping[str, str]) -> str:
    """The client's x-request-id when it is a sane token (it is echoed, logged and sent
    upstream), else a new one."""
    given = headers.get("x-request-id", "")
    if 0 < len(given) <= _MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return new_request_id()


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if any(t is not None and not isinstance(t, str) for t in texts):
            raise GatewayError(400, "a content part's 'text' must be a string", param="messages")
        return "".join(t for t in texts if t)
    return ""


def prompt_text(operation: str, body: dict[str, Any]) -> str:
    """The prompt as one string: chat messages serialised in order, or the completion prompt."""
    if operation == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise GatewayError(400, "'messages' must be a non-empty list", param="messages")
        parts = []
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise GatewayError(400, "each message needs a 'role'", param="messages")
            parts.append(f"<|{message['role']}|>{_content_text(message.get('content'))}")
        return "".join(parts)
    key = "input" if operation == "embedding" else "prompt"
    value = body.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    if _token_ids(value):
        return " ".join(map(str, value))
    if isinstance(value, list) and value and all(_token_ids(v) for v in value):
        return "\n".join(" ".join(map(str, ids)) for ids in value)
    raise GatewayError(
        400,
        f"'{key}' must be a string, a list of strings, or token ids (a list of integers or of "
        "integer lists)",
        param=key,
    )


def _token_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def prompt_tokens_estimate(operation: str, body: dict[str, Any], text: str) -> int:
    """Token ids count exactly; text at about four characters per token."""
    if operation != "chat":
        value = body.get("input" if operation == "embedding" else "prompt")
        if _token_ids(value):
            return len(value)
        if isinstance(value, list) and value and all(_token_ids(v) for v in value):
            return sum(len(ids) for ids in value)
    return estimate_tokens(text)


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise GatewayError(400, f"'{key}' must be an integer", param=key)
        if not 1 <= value <= MAX_TOKENS_LIMIT:
            raise GatewayError(400, f"'{key}' must be between 1 and {MAX_TOKENS_LIMIT}", param=key)
        return value
    return None


def parse_request(inbound: InboundRequest, received_at: float, max_bytes: int) -> RequestContext:
    """Validate the envelope of an OpenAI request; the model name is resolved later."""
    operation = OPERATIONS.get(inbound.path)
    if operation is None:
        raise GatewayError(404, f"no such endpoint: {inbound.method} {inbound.path}")
    if len(inbound.body) > max_bytes:
        raise GatewayError(413, f"request body exceeds {max_bytes} bytes", code="request_too_large")
    try:
        body = orjson.loads(inbound.body)
    except orjson.JSONDecodeError:
        raise GatewayError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "'model' is required", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GatewayError(400, "'stream' must be a boolean", param="stream")
    if operation == "embedding" and stream:
        raise GatewayError(400, "embeddings cannot be streamed", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise GatewayError(400, "'stream_options' must be an object", param="stream_options")
    text = prompt_text(operation, body)
    headers = inbound.headers
    return RequestContext(
        request_id=request_id(headers),
        operation=operation,
        inbound=inbound,
        body=body,
        received_at=received_at,
        model=model,
        stream=stream,
        client_wants_usage=bool(stream and options and options.get("include_usage")),
        max_tokens=_max_tokens(body),
        prompt_text=text,
        prompt_tokens_estimate=prompt_tokens_estimate(operation, body, text),
        fairness_id=headers.get("x-gateway-inference-fairness-id") or "default-flow",
    )
