from __future__ import annotations

import pytest

from tokenway.scheduling.scorers.lora_affinity import LoraAffinityScorer

from .helpers import endpoint, request

A = frozenset({"a"})
AB = frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("max_loras", "running", "waiting", "expected"),
    [
        (2, A, frozenset(), 1.0),  # active
        (1, A, frozenset({"x"}), 1.0),  # active beats everything, even with a full slot set
        (2, frozenset({"b"}), frozenset(), 0.8),  # a free slot
        (0, frozenset(), frozenset(), 0.0),  # no LoRA support reported
        (2, frozenset({"b", "c"}), A, 0.6),  # slots full, adapter already waiting there
        (2, frozenset({"b", "c"}), frozenset(), 0.0),  # slots full, would wait for a slot
    ],
)
def test_lora_affinity_cases(
    max_loras: int, running: frozenset[str], waiting: frozenset[str], expected: float
) -> None:
    ep = endpoint(1, max_loras=max_loras, running_loras=running, waiting_loras=waiting)
    assert LoraAffinityScorer().score(request(adapter="a"), [ep], 0.0) == [expected]


def test_requests_without_adapter_are_indifferent() -> None:
    eps = [endpoint(1, max_loras=1, running_loras=AB), endpoint(2)]
    assert LoraAffinityScorer().score(request(), eps, 0.0) == [1.0, 1.0]
