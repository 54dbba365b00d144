"""A lean, I/O-free reader of OpenAI server-sent events: bytes in, payload events out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DONE = b"[DONE]"


class SseSplitter:
    """Splits a byte stream into the payloads of its `data:` lines, across read boundaries."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._partial + data).split(b"\n") if self._partial else data.split(b"\n")
        self._partial = lines.pop()
        return [line[5:].strip() for line in lines if line.startswith(b"data:")]


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one streamed payload means to the benchmark."""

    tokens: bool
    """The chunk carries generated text (a token arrival)."""
    usage: dict[str, Any] | None = None
    error: str | None = None


def parse_chunk(payload: bytes) -> Chunk:
    """Interpret a chat or completion chunk; malformed JSON raises ValueError."""
    data = orjson.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("a streamed chunk must be a JSON object")
    if "error" in data or data.get("object") == "error":
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else error
        return Chunk(False, error=str(message))
    usage = data.get("usage")
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    if not isinstance(choice, dict):
        raise ValueError("a streamed choice must be a JSON object")
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return Chunk(bool(text), usage if isinstance(usage, dict) else None)
