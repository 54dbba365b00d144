"""ShareGPT conversation files: the first user turn is the prompt, the reply sets the length."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenway.bench.datasets.base import DatasetError, chat, read_text
from tokenway.bench.datasets.text import estimate_tokens
from tokenway.bench.workload import WorkloadRequest

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing"}


def _first_exchange(entry: Any) -> tuple[str, str] | None:
    turns = entry.get("conversations") if isinstance(entry, dict) else None
    if not isinstance(turns, list):
        return None
    for question, answer in itertools.pairwise(turns):
        if (
            isinstance(question, dict)
            and isinstance(answer, dict)
            and question.get("from") in _USER
            and answer.get("from") in _ASSISTANT
            and isinstance(question.get("value"), str)
            and isinstance(answer.get("value"), str)
        ):
            return question["value"], answer["value"]
    return None


def load_sharegpt(
    path: Path, min_tokens: int = 4, max_input_tokens: int = 1024, max_output_tokens: int = 2048
) -> list[WorkloadRequest]:
    """Chat requests from a ShareGPT JSON array (or JSONL); too short or long exchanges skipped.

    The filters follow vLLM's serving benchmark so results compare with published ShareGPT runs.
    """
    requests = []
    for entry in _entries(path, read_text(path)):
        exchange = _first_exchange(entry)
        if exchange is None:
            continue
        prompt_tokens, output_tokens = (estimate_tokens(part) for part in exchange)
        if min(prompt_tokens, output_tokens) < min_tokens:
            continue
        if prompt_tokens > max_input_tokens or output_tokens > max_output_tokens:
            continue
        requests.append(WorkloadRequest(0.0, messages=chat(exchange[0]), max_tokens=output_tokens))
    if not requests:
        raise DatasetError(str(path), None, "no usable ShareGPT conversations in the file")
    return requests


def _entries(path: Path, text: str) -> list[Any]:
    """The file's conversations: a JSON array, or JSONL (one conversation a line)."""
    if text.lstrip().startswith("["):
        try:
            array: list[Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from None
        return array
    entries = []
    # split on newlines only: str.splitlines also breaks at U+2028, which JSON strings may hold
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if _is_object(text):
                message = "the top level is an object: give a JSON array, or JSONL (one a line)"
                raise DatasetError(str(path), None, message) from None
            raise DatasetError(str(path), number, f"invalid JSON: {exc.msg}") from None
    return entries


def _is_object(text: str) -> bool:
    """Whether the whole text is one JSON object (a pretty-printed file, not JSONL)."""
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


@dataclass(frozen=True, slots=True)
class ShareGpt:
    """ShareGPT exchanges in a seeded random order, reshuffled each pass."""

    path: Path
    model: str = ""
    max_input_tokens: int = 1024
    max_output_tokens: int = 2048

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        pool = load_sharegpt(
            self.path,
            max_input_tokens=self.max_input_tokens,
            max_output_tokens=self.max_output_tokens,
        )
        if self.model:
            pool = [dataclasses.replace(request, model=self.model) for request in pool]
        rng = random.Random(seed)
        while True:
            order = list(pool)
            rng.shuffle(order)
            yield from order
