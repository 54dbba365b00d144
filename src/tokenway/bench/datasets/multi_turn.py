"""Multi-turn conversations whose context grows each turn by the last question and answer."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from tokenway.bench.datasets.base import chat
from tokenway.bench.datasets.lengths import LengthDist, fixed
from tokenway.bench.datasets.text import filler
from tokenway.bench.workload import WorkloadRequest

_USER = fixed(64)
_OUTPUT = fixed(128)


@dataclass(frozen=True, slots=True)
class _Conversation:
    name: str
    system: str
    history: tuple[dict[str, str], ...]
    turn: int


@dataclass(frozen=True, slots=True)
class MultiTurn:
    """`active` conversations at a time, taking turns round-robin; a finished one is replaced.

    The assistant's earlier answers are filler of the requested output length: the next turn
    must not wait for the previous answer, so the exact text the server produced is not known.
    What matters for caches and routing is that each turn extends the previous turn's prompt.
    """

    turns: int = 5
    active: int = 8
    system_prompt_len: int = 0
    user_len: LengthDist = _USER
    output_len: LengthDist = _OUTPUT
    model: str = ""

    def __post_init__(self) -> None:
        if self.turns < 1 or self.active < 1:
            raise ValueError("multi-turn needs at least one turn and one active conversation")

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        rng = random.Random(seed)
        started = 0

        def start() -> _Conversation:
            nonlocal started
            started += 1
            system = filler(rng, self.system_prompt_len) if self.system_prompt_len else ""
            return _Conversation(f"conversation-{started - 1}", system, (), 0)

        live = [start() for _ in range(self.active)]
        while True:
            for slot, conversation in enumerate(live):
                question = filler(rng, self.user_len.sample(rng))
                max_tokens = max(1, self.output_len.sample(rng))
                yield WorkloadRequest(
                    0.0,
                    messages=chat(question, conversation.system, conversation.history),
                    max_tokens=max_tokens,
                    model=self.model,
                    group=conversation.name,
                )
                answer = filler(rng, max_tokens)
                history = (
                    *conversation.history,
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                )
                following = _Conversation(
                    conversation.name, conversation.system, history, conversation.turn + 1
                )
                live[slot] = following if following.turn < self.turns else start()
