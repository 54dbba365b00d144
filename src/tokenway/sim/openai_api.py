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

from tokenway.sim import tokenizer


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


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
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


def _stop_cut(stop: object, seed: int, max_tokens: int) -> int | None:
    """Tokens before the earliest stop string in the deterministic answer, if one occurs."""
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of strings.", "stop")
    text = tokenizer.filler(seed, 0, max_tokens).decode()
    found = [i for s in stops if s and (i := text.find(s)) >= 0]
    return min(found) // tokenizer.TOKEN_BYTES if found else None


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
    key = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    requested = body.get(key)
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int)):
        raise ApiError(400, f"'{key}' must be an integer.", key)
    if requested is not None and requested < 1:
        raise ApiError(400, f"{key} must be at least 1, got {requested}.", key)
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
    if requested is not None:
        max_tokens, reason = requested, "length"
    else:
        max_tokens, reason = min(room, 16 + seed % 112), "stop"
    cut = _stop_cut(body.get("stop"), seed, max_tokens)
    if cut is not None and cut < max_tokens:
        max_tokens, reason = max(cut, 1), "stop"
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    return Generation(
        chat,
        model,
        lora,
        prompt,
        max_tokens,
        requested,
        reason,
        seed,
        bool(body.get("stream", False)),
        include_usage,
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
            "stop_reason": None,
        }
        kind = "chat.completion"
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": reason,
            "stop_reason": None,
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
        if self.gen.chat:
            choice = f'{{"index": 0, "delta": {{}}, "logprobs": null, "finish_reason": "{reason}"}}'
        else:
            choice = (
                f'{{"index": 0, "text": "", "logprobs": null, "finish_reason": "{reason}", '
                '"stop_reason": null}'
            )
        return f'data: {self._head}, "choices": [{choice}]}}\n\n'.encode()

    def usage(self, use: dict[str, Any]) -> bytes:
        return f'data: {self._head}, "choices": [], "usage": {json.dumps(use)}}}\n\n'.encode()


DONE = b"data: [DONE]\n\n"
