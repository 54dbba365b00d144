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
            rfilter = self._filter(int(choice.get("index") or 0))
            out = rfilter.feed(text) if isinstance(text, str) else ""
            if ends:
                out += rfilter.finish()
            if out != text:
                holder[key] = out
                changed = True
        return changed

    def body(self, raw: bytes) -> bytes:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return orjson.dumps(payload) if self._apply(payload, whole=True) else raw

    def event(self, event: bytes) -> bytes:
        lines = event.splitlines(keepends=True)
        for i, line in enumerate(lines):
            content = line.rstrip(b"\r\n")
            if not content.startswith(b"data:") or content[5:].strip() in (b"", b"[DONE]"):
                continue
            try:
                payload = orjson.loads(content[5:])
            except orjson.JSONDecodeError:
                continue
            if self._apply(payload, whole=False):
                lines[i] = b"data: " + orjson.dumps(payload) + line[len(content) :]
        return b"".join(lines)


def answer_filter(chain: Chain | None, ctx: RequestContext) -> AnswerFilter | None:
    """The response processors that apply to this request's answer, or None when none do."""
    first = chain.response_filter(ctx) if chain is not None else None
    if chain is None or first is None:
        return None
    return AnswerFilter(first, partial(chain.response_filter, ctx))
