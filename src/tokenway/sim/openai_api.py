"""The OpenAI-compatible request and response shapes vLLM uses, without any I/O.

`parse_generation` validates a /v1/completions or /v1/chat/completions body into a
`Generation` or raises `ApiError` with the status and message vLLM would answer.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tokenway.sim import tokenizer

_BOOL = TypeAdapter(bool)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> bytes:
        kind = {400: "BadRequestError", 404: "NotFoundError"}.get(
            self.status, "InternalServerError"
        )
        error = {"message": self.message, "type": kind, "param": self.param, "code": self.status}
        return json.dumps({"error": error}).encode()


@dataclass(frozen=True, slots=True)
class Generation:
    chat: bool
    model: str
    """The name the client asked for (base model or adapter), echoed in responses."""
    lora: str | None
    prompt: bytes
    max_tokens: int
    requested_max_tokens: int | None
    finish_reason_at_max: str
    seed: int
    stream: bool
    include_usage: bool
    stop: str | None
    """The stop string that ends the answer, if one occurs before max_tokens."""
    cut: int | None
    """Byte offset in the answer where `stop` begins: no text at or after it is returned."""

    def visible(self, tokens: bytes, offset: int) -> bytes:
        """The part of `tokens`, which start `offset` bytes into the answer, before the cut."""
        return tokens if self.cut is None else tokens[: max(0, self.cut - offset)]

    def stop_reason(self, finish_reason: str) -> str | None:
        return self.stop if finish_reason == "stop" else None


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    # Deeply nested arrays or objects exhaust the C decoder's recursion limit.
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _prompt_text(body: Mapping[str, Any], chat: bool) -> str:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list.", "messages")
        if not all(isinstance(m, Mapping) for m in messages):
            raise ApiError(400, "Each message must be an object.", "messages")
        if not all(isinstance(m.get("content"), str | list | None) for m in messages):
            raise ApiError(
                400, "'content' must be a string, a list of content parts or null.", "messages"
            )
        return tokenizer.render_chat(messages)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiError(400, "'prompt' must be a string.", "prompt")
    return prompt


def resolve_model(
    requested: object, base_model: str, adapters: Mapping[str, str]
) -> tuple[str, str | None]:
    """(model echoed, adapter or None); 404 for names the server does not serve."""
    if requested is None:
        return base_model, None
    if not isinstance(requested, str):
        raise ApiError(400, "'model' must be a string.", "model")
    if requested == base_model:
        return requested, None
    if requested in adapters:
        return requested, requested
    raise ApiError(404, f"The model `{requested}` does not exist.", "model")


def _tokens(num_bytes: int) -> int:
    return -(-num_bytes // tokenizer.TOKEN_BYTES)


def _first_stop(stop: object, seed: int, max_tokens: int) -> tuple[str, int] | None:
    """The stop string that ends the deterministic answer, and its byte offset, if one does."""
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of strings.", "stop")
    text = tokenizer.filler(seed, 0, max_tokens).decode()
    # vLLM checks the stop strings after each token, so the one completed by the earliest
    # token wins even if another starts before it; within one token, list order decides.
    found = [(s, at) for s in stops if s and (at := text.find(s)) >= 0]
    return min(found, key=lambda f: _tokens(f[1] + len(f[0])), default=None)


def _flag(value: object, name: str) -> bool:
    """A boolean field read the way vLLM's pydantic models do (lax: "no", "1", 0 ...)."""
    if value is None:
        return False
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        raise ApiError(400, f"'{name}' must be a boolean.", name) from None


def _stream_flags(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """(stream, include_usage)."""
    stream = _flag(body.get("stream"), "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, Mapping):
        raise ApiError(400, "'stream_options' must be an object.", "stream_options")
    # vLLM tests the options' truthiness: an empty object is accepted without streaming.
    if options and not stream:
        raise ApiError(
            400, "Stream options can only be defined when `stream=True`.", "stream_options"
        )
    # vLLM's StreamOptions defaults include_usage to true.
    include_usage = options is not None and _flag(
        options.get("include_usage", True), "stream_options.include_usage"
    )
    return stream, include_usage


def _check_sampling(body: Mapping[str, Any]) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(400, f"'{key}' must be a number.", key)


def _requested_max_tokens(body: Mapping[str, Any], chat: bool) -> tuple[str, int | None]:
    """(field, value) of the client's output limit: max_completion_tokens unless it is null."""
    key = (
        "max_completion_tokens"
        if chat and body.get("max_completion_tokens") is not None
        else "max_tokens"
    )
    requested = body.get(key)
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int)):
        raise ApiError(400, f"'{key}' must be an integer.", key)
    if requested is not None and requested < 1:
        raise ApiError(400, f"{key} must be at least 1, got {requested}.", key)
    return key, requested


def parse_generation(
    body: Mapping[str, Any],
    chat: bool,
    base_model: str,
    adapters: Mapping[str, str],
    max_model_len: int,
) -> Generation:
    model, lora = resolve_model(body.get("model"), base_model, adapters)
    text = _prompt_text(body, chat)
    prompt = tokenizer.encode(text)
    num_prompt = len(prompt) // tokenizer.TOKEN_BYTES
    seed = zlib.crc32(prompt)
    key, requested = _requested_max_tokens(body, chat)
    room = max_model_len - num_prompt
    if (requested is not None and requested > room) or room < 1:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {num_prompt + (requested or 0)} tokens ({num_prompt} in the messages, "
            f"{requested or 0} in the completion). Please reduce the length of the messages "
            "or completion.",
            key if requested is not None else ("messages" if chat else "prompt"),
        )
    n = body.get("n", 1)
    if n != 1:
        raise ApiError(400, "Only n=1 is supported by this server.", "n")
    _check_sampling(body)
    stream, include_usage = _stream_flags(body)
    natural = 16 + seed % 112
    if requested is not None:
        max_tokens, reason = requested, "length"
    elif natural < room:
        max_tokens, reason = natural, "stop"
    else:
        # vLLM's default max_tokens is the room left in the context, and running out of it
        # is a length finish even where the answer would have ended on the same token.
        max_tokens, reason = room, "length"
    stop = _first_stop(body.get("stop"), seed, max_tokens)
    if stop is not None:
        # The token that completes the stop string is the last one generated (and counted).
        max_tokens, reason = _tokens(stop[1] + len(stop[0])), "stop"
    return Generation(
        chat=chat,
        model=model,
        lora=lora,
        prompt=prompt,
        max_tokens=max_tokens,
        requested_max_tokens=requested,
        finish_reason_at_max=reason,
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        stop=stop[0] if stop else None,
        cut=stop[1] if stop else None,
    )


def usage(prompt_tokens: int, completion_tokens: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def completion_body(
    gen: Generation, request_id: str, created: int, text: str, reason: str, use: dict[str, Any]
) -> bytes:
    if gen.chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "tool_calls": []},
            "logprobs": None,
            "finish_reason": reason,
            "stop_reason": gen.stop_reason(reason),
        }
        kind = "chat.completion"
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": reason,
            "stop_reason": gen.stop_reason(reason),
        }
        kind = "text_completion"
    body = {
        "id": request_id,
        "object": kind,
        "created": created,
        "model": gen.model,
        "choices": [choice],
        "usage": use,
    }
    return json.dumps(body).encode()


class ChunkWriter:
    """Pre-renders the SSE frames of one streamed answer; content goes between two constants."""

    def __init__(self, gen: Generation, request_id: str, created: int) -> None:
        self.gen = gen
        head = {
            "id": request_id,
            "object": "chat.completion.chunk" if gen.chat else "text_completion",
            "created": created,
            "model": gen.model,
        }
        self._head = json.dumps(head)[:-1]
        if gen.chat:
            self._before = f'data: {self._head}, "choices": [{{"index": 0, "delta": {{"content": '
            self._after = '}, "logprobs": null, "finish_reason": null}]}\n\n'
        else:
            self._before = f'data: {self._head}, "choices": [{{"index": 0, "text": '
            self._after = ', "logprobs": null, "finish_reason": null, "stop_reason": null}]}\n\n'
        self._before_bytes = (self._before + '"').encode()
        self._after_bytes = ('"' + self._after).encode()

    def first(self) -> bytes:
        """vLLM's chat streams open with the assistant role and empty content."""
        if not self.gen.chat:
            return b""
        return (
            f'data: {self._head}, "choices": [{{"index": 0, "delta": {{"role": "assistant", '
            '"content": ""}, "logprobs": null, "finish_reason": null}]}\n\n'
        ).encode()

    def content(self, tokens: bytes) -> bytes:
        """A frame carrying generated tokens (filler text: plain ASCII, nothing to escape)."""
        return b"".join((self._before_bytes, tokens, self._after_bytes))

    def finish(self, reason: str) -> bytes:
        content = '"delta": {}' if self.gen.chat else '"text": ""'
        choice = (
            f'{{"index": 0, {content}, "logprobs": null, "finish_reason": "{reason}", '
            f'"stop_reason": {json.dumps(self.gen.stop_reason(reason))}}}'
        )
        return f'data: {self._head}, "choices": [{choice}]}}\n\n'.encode()

    def usage(self, use: dict[str, Any]) -> bytes:
        return f'data: {self._head}, "choices": [], "usage": {json.dumps(use)}}}\n\n'.encode()


DONE = b"data: [DONE]\n\n"
