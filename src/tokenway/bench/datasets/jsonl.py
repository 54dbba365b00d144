"""Prompts from a JSONL file: one request per line, `prompt` or `messages`, optional settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenway.bench.datasets.base import DatasetError, read_text
from tokenway.bench.workload import WorkloadRequest

_KEYS = {"prompt", "messages", "max_tokens", "model", "tenant", "group"}


def _message(value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("role"), str)
        or not isinstance(value.get("content"), str)
    ):
        raise ValueError("each message needs string 'role' and 'content'")
    return {"role": value["role"], "content": value["content"]}


def _parse_line(data: Any, max_tokens: int, model: str) -> WorkloadRequest:
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} (allowed: {sorted(_KEYS)})")
    prompt, messages = data.get("prompt"), data.get("messages")
    if (prompt is None) == (messages is None):
        raise ValueError("give exactly one of 'prompt' (string) or 'messages' (list)")
    if prompt is not None and not isinstance(prompt, str):
        raise ValueError("'prompt' must be a string")
    if messages is not None and (not isinstance(messages, list) or not messages):
        raise ValueError("'messages' must be a non-empty list")
    tokens = data.get("max_tokens", max_tokens)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise ValueError("'max_tokens' must be a positive integer")
    for key in ("model", "tenant", "group"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"'{key}' must be a string")
    return WorkloadRequest(
        0.0,
        prompt=prompt or "",
        messages=tuple(_message(m) for m in messages or ()),
        max_tokens=tokens,
        model=data.get("model", model),
        tenant=data.get("tenant", "default"),
        group=data.get("group", ""),
    )


def load_jsonl(path: Path, max_tokens: int = 128, model: str = "") -> list[WorkloadRequest]:
    """Every request in the file, in order; DatasetError names the file and line of a bad one."""
    requests = []
    # split on newlines only: str.splitlines also breaks at U+2028, which JSON strings may hold
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(str(path), number, f"invalid JSON: {exc.msg}") from None
        try:
            requests.append(_parse_line(data, max_tokens, model))
        except ValueError as exc:
            raise DatasetError(str(path), number, str(exc)) from None
    if not requests:
        raise DatasetError(str(path), None, "no requests in the file")
    return requests


@dataclass(frozen=True, slots=True)
class JsonlPrompts:
    """The file's requests in file order, repeated as often as the load needs."""

    path: Path
    max_tokens: int = 128
    model: str = ""

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        requests = load_jsonl(self.path, self.max_tokens, self.model)
        while True:
            yield from requests
