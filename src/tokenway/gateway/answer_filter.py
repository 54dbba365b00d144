"""Response processors applied to an OpenAI answer, whole (JSON) or as it streams (SSE).

Each choice's text goes through its own `ResponseFilter`, which may hold back the tail of a
pattern split across chunks; what it releases replaces the original text. A rejection raises
GatewayError: the proxy answers with it, or ends a stream already under way with an error event.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from tokenway.gateway.context import RequestContext
from tokenway.processing.chain import Chain, ResponseFilter


def _text_slot(choice: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The object and key holding a choice's text: chat message/delta content or completion text."""
    for key in ("delta", "message"):
        holder = choice.get(key)
        if isinstance(holder, dict):
            return holder, "content"
    if "text" in choice:
        return choice, "text"
    return None


class AnswerFilter:
    """Runs the response processors of one request over its answer."""

    def __init__(self, first: ResponseFilter, make: Callable[[], ResponseFilter | None]) -> None:
        """`first` serves choice 0; `make` builds the filters of further choices (n > 1)."""
        self._make = make
        self._filters: dict[int, ResponseFilter] = {0: first}
        self._open: dict[int, str] = {}
        """Streamed choices not yet finished: "delta" (chat) or "text" (completion) each."""
        self._envelope: dict[str, Any] = {}
        """The last streamed chunk's id, object, created and model, for a closing chunk."""

    def _filter(self, index: int) -> ResponseFilter:
        if index not in self._filters:
            made = self._make()
            assert made is not None, "the processors matched this request a moment ago"
            self._filters[index] = made
        return self._filters[index]

    def _apply(self, payload: Any, whole: bool) -> bool:
        changed = False
        choices = payload.get("choices") if isinstance(payload, dict) else None
        for choice in choices or ():
            if not isinstance(choice, dict):
                continue
            slot = _text_slot(choice)
            if slot is None:
                continue
            holder, key = slot
            text = holder.get(key)
            ends = whole or choice.get("finish_reason") is not None
            if not isinstance(text, str) and not ends:
                continue
            index = int(choice.get("index") or 0)
            rfilter = self._filter(index)
            out = rfilter.feed(text) if isinstance(text, str) else ""
            if ends:
                out += rfilter.finish()
                self._open.pop(index, None)
            else:
                self._open[index] = "text" if holder is choice else "delta"
            if out != text and (out or text is not None):
                holder[key] = out
                changed = True
        return changed

    def flush(self) -> bytes:
        """A closing chunk with what the filters still hold for choices whose stream ended
        without a finish_reason: held-back text is released, not dropped. (A stream cut by an
        upstream failure ends with an error event instead, without it.)"""
        choices = []
        for index, kind in sorted(self._open.items()):
            text = self._filters[index].finish()
            if text:
                slot = {"content": text} if kind == "delta" else None
                choice = {"index": index, "delta": slot} if slot else {"index": index, "text": text}
                choices.append(choice | {"finish_reason": None})
        self._open.clear()
        if not choices:
            return b""
        return b"data: " + orjson.dumps({**self._envelope, "choices": choices}) + b"\n\n"

    def body(self, raw: bytes) -> bytes:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return orjson.dumps(payload) if self._apply(payload, whole=True) else raw

    def end(self, rest: bytes) -> bytes:
        """The end of a stream: its unterminated tail filtered like any event, then `flush`."""
        tail = self.event(rest) if rest else b""
        closing = self.flush()
        if closing and tail and not tail.endswith((b"\n\n", b"\r\n\r\n")):
            tail += b"\n\n"
        return tail + closing

    def event(self, event: bytes) -> bytes:
        lines = event.splitlines(keepends=True)
        closing = b""
        for i, line in enumerate(lines):
            content = line.rstrip(b"\r\n")
            data = content[5:].strip() if content.startswith(b"data:") else b""
            if data == b"[DONE]":
                closing = self.flush()
            if not data or data == b"[DONE]":
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(payload, dict):
                self._envelope = {
                    k: payload[k] for k in ("id", "object", "created", "model") if k in payload
                }
            if self._apply(payload, whole=False):
                lines[i] = b"data: " + orjson.dumps(payload) + line[len(content) :]
        return closing + b"".join(lines)


def answer_filter(chain: Chain | None, ctx: RequestContext) -> AnswerFilter | None:
    """The response processors that apply to this request's answer, or None when none do."""
    first = chain.response_filter(ctx) if chain is not None else None
    if chain is None or first is None:
        return None
    return AnswerFilter(first, partial(chain.response_filter, ctx))
