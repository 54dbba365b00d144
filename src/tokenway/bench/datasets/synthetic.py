"""Random prompts with input and output token lengths drawn from distributions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from tokenway.bench.datasets.base import chat
from tokenway.bench.datasets.lengths import LengthDist, fixed
from tokenway.bench.datasets.text import filler
from tokenway.bench.workload import WorkloadRequest

_INPUT = fixed(256)
_OUTPUT = fixed(128)


@dataclass(frozen=True, slots=True)
class Synthetic:
    """Independent random prompts; prefill-heavy or decode-heavy mixes come from the two lengths."""

    input_len: LengthDist = _INPUT
    output_len: LengthDist = _OUTPUT
    chat: bool = True
    model: str = ""

    def stream(self, seed: int) -> Iterator[WorkloadRequest]:
        rng = random.Random(seed)
        while True:
            text = filler(rng, self.input_len.sample(rng))
            max_tokens = max(1, self.output_len.sample(rng))
            if self.chat:
                yield WorkloadRequest(
                    0.0, messages=chat(text), max_tokens=max_tokens, model=self.model
                )
            else:
                yield WorkloadRequest(0.0, prompt=text, max_tokens=max_tokens, model=self.model)
