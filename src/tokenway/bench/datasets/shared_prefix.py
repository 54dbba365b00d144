"""Groups of prompts that share a long system prompt: the workload prefix-aware routing wins on."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from tokenway.bench.datasets.base import chat
from tokenway.bench.datasets.lengths import LengthDist, fixed
from tokenway.bench.datasets.text import filler
from tokenway.bench.workload import WorkloadRequest

_QUESTION = fixed(128)
_OUTPUT = fixed(128)


@dataclass(frozen=True, slots=True)
class SharedPrefix:
    """`num_groups` shared contexts (one per tenant), each asked `prompts_per_group` questions.

    Every round sends each group's questions once, in a seeded shuffled order, so the groups'
    prefixes compete for cache space the way many tenants do. The group is the tenant and the
    report label.
    """

    num_groups: int = 10
    prompts_per_group: int = 10
    system_prompt_len: int = 2048
    question_len: LengthDist = _QUESTION
    output_len: LengthDist = _OUTPUT
    chat: bool = True
    model: str = ""

    def __post_init__(self) -> None:
        if self.num_groups < 1 or self.prompts_per_group < 1:
            raise ValueError("shared prefix needs at least one group and one prompt per group")

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        rng = random.Random(seed)
        pool = [
            self._request(f"group-{group}", system, rng)
            for group in range(self.num_groups)
            for system in [filler(rng, self.system_prompt_len)]
            for _ in range(self.prompts_per_group)
        ]
        while True:
            order = list(pool)
            rng.shuffle(order)
            yield from order

    def _request(self, group: str, system: str, rng: random.Random) -> WorkloadRequest:
        question = filler(rng, self.question_len.sample(rng))
        max_tokens = max(1, self.output_len.sample(rng))
        if self.chat:
            messages = chat(question, system=system)
            return WorkloadRequest(
                0.0,
                messages=messages,
                max_tokens=max_tokens,
                model=self.model,
                tenant=group,
                group=group,
            )
        return WorkloadRequest(
            0.0,
            prompt=f"{system} {question}",
            max_tokens=max_tokens,
            model=self.model,
            tenant=group,
            group=group,
        )
