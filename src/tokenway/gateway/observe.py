"""Watching a response go by: first-token time, inter-token gaps and usage, for either data plane.

The observer is fed the raw upstream bytes as they pass and never holds them back. For streams
it frames SSE events incrementally (events may be split across chunks) and, when the client did
not ask for usage, tells the relay which event was the usage-only chunk that the gateway added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenway.gateway.context import Usage

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
"""A blank line ends an SSE event, in any of the spec's three line endings."""


def usage_from(payload: Any) -> Usage | None:
    """The `usage` object of an OpenAI response or chunk, if it carries one."""
    if not isinstance(payload, dict):
        return None
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(cached) if isinstance(cached, int) else None,
    )


def _has_output(payload: dict[str, Any]) -> bool:
    for choice in payload.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("text"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


@dataclass(slots=True)
class ResponseObserver:
    """Incremental measurements of one upstream response; times come from the caller's clock."""

    stream: bool
    started_at: float
    first_token_at: float | None = None
    last_token_at: float | None = None
    chunks_with_output: int = 0
    usage: Usage | None = None
    upstream_error: str | None = None
    _buffer: bytearray = field(default_factory=bytearray)
    _itl_sum: float = 0.0

    def feed(self, chunk: bytes, now: float) -> list[bytes]:
        """Observe a piece of the body; for streams returns the complete SSE events in it."""
        if not self.stream:
            self._buffer += chunk
            if self.first_token_at is None and chunk:
                self.first_token_at = now
            return []
        self._buffer += chunk
        events = []
        while match := _EVENT_END.search(self._buffer):
            event = bytes(self._buffer[: match.end()])
            del self._buffer[: match.end()]
            self._observe_event(event, now)
            events.append(event)
        return events

    def finish(self, now: float) -> bytes:
        """End of body. Returns stream bytes not terminated by a blank line (sent as they are)."""
        if not self.stream:
            try:
                payload = orjson.loads(self._buffer)
            except orjson.JSONDecodeError:
                payload = None
            self.usage = usage_from(payload)
            if self.first_token_at is not None:
                self.last_token_at = now
            self._buffer.clear()
            return b""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _observe_event(self, event: bytes, now: float) -> None:
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(payload, dict):
                continue
            if "error" in payload:
                self.upstream_error = str(payload["error"])[:200]
            usage = usage_from(payload)
            if usage is not None:
                self.usage = usage
            if _has_output(payload):
                if self.first_token_at is None:
                    self.first_token_at = now
                elif self.last_token_at is not None:
                    self._itl_sum += now - self.last_token_at
                self.last_token_at = now
                self.chunks_with_output += 1

    def counted_usage(self, prompt_estimate: int) -> Usage | None:
        """The reported usage, or for a stream cut short, what was seen generated so far.

        Servers emit one token per streamed chunk, so counted chunks are the tokens produced;
        the prompt was processed in full once any output appeared.
        """
        if self.usage is not None or self.chunks_with_output == 0:
            return self.usage
        return Usage(prompt_tokens=prompt_estimate, completion_tokens=self.chunks_with_output)

    @staticmethod
    def is_usage_only(event: bytes) -> bool:
        """True for the final chunk that carries usage and no choices (include_usage)."""
        if b'"usage"' not in event:
            return False
        for line in event.splitlines():
            if line.startswith(b"data:"):
                try:
                    payload = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return False
                return (
                    isinstance(payload, dict)
                    and not payload.get("choices")
                    and isinstance(payload.get("usage"), dict)
                )
        return False

    @property
    def ttft(self) -> float | None:
        """Time to the first streamed token; None for a whole (non-streamed) answer, whose first
        byte comes only once every token is generated."""
        if not self.stream or self.first_token_at is None:
            return None
        return self.first_token_at - self.started_at

    @property
    def mean_itl(self) -> float | None:
        gaps = self.chunks_with_output - 1
        return self._itl_sum / gaps if gaps > 0 else None

    def time_per_output_token(self) -> float | None:
        """(last - first token time) / (output tokens - 1), the OpenTelemetry GenAI definition."""
        tokens = self.usage.completion_tokens if self.usage else self.chunks_with_output
        if not self.stream or self.first_token_at is None or self.last_token_at is None:
            return None
        if tokens < 2:
            return None
        return (self.last_token_at - self.first_token_at) / (tokens - 1)
