from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from tokenway.bench.datasets import (
    DatasetError,
    JsonlPrompts,
    LengthDist,
    LoraMix,
    MultiTurn,
    SharedPrefix,
    ShareGpt,
    Synthetic,
    estimate_tokens,
    filler,
    fixed,
    load_jsonl,
    tiered_adapters,
)
from tokenway.bench.workload import WorkloadRequest


def take(dataset: object, count: int, seed: int = 7) -> list[WorkloadRequest]:
    return list(itertools.islice(dataset.stream(seed), count))  # type: ignore[attr-defined]


def text_of(request: WorkloadRequest) -> str:
    return request.prompt or "".join(m["content"] for m in request.messages)


@pytest.mark.parametrize("tokens", [0, 1, 7, 6000])
def test_filler_has_the_requested_token_count(tokens: int) -> None:
    assert estimate_tokens(filler(random.Random(1), tokens)) == tokens


def test_length_dist_is_clipped_and_fixed_is_exact() -> None:
    rng = random.Random(3)
    dist = LengthDist(mean=100, std_dev=80, min=10, max=150)
    samples = [dist.sample(rng) for _ in range(2000)]
    assert min(samples) == 10 and max(samples) == 150
    assert 80 < sum(samples) / len(samples) < 110
    assert {fixed(42).sample(rng) for _ in range(10)} == {42}
    with pytest.raises(ValueError, match="below min"):
        LengthDist(mean=5, min=10, max=3)


def test_synthetic_is_deterministic_and_follows_lengths() -> None:
    dataset = Synthetic(input_len=fixed(300), output_len=LengthDist(50, 10, 20, 80), model="m")
    first, again, other = take(dataset, 20), take(dataset, 20), take(dataset, 20, seed=8)
    assert first == again and first != other
    assert all(estimate_tokens(r.messages[-1]["content"]) == 300 for r in first)
    assert all(20 <= r.max_tokens <= 80 and r.model == "m" for r in first)
    completion = take(Synthetic(chat=False), 3)
    assert all(r.prompt and not r.messages for r in completion)


def test_shared_prefix_groups_share_their_system_prompt_at_scale() -> None:
    dataset = SharedPrefix(num_groups=150, prompts_per_group=2, system_prompt_len=6000)
    requests = take(dataset, 300)
    by_group: dict[str, set[str]] = {}
    for request in requests:
        by_group.setdefault(request.group, set()).add(request.messages[0]["content"])
        assert request.tenant == request.group
    assert len(by_group) == 150
    assert all(len(systems) == 1 for systems in by_group.values())
    assert len({next(iter(s)) for s in by_group.values()}) == 150
    assert estimate_tokens(requests[0].messages[0]["content"]) == 6000
    # the first round holds every prompt exactly once, then the pool repeats
    assert Counter(r.group for r in requests) == {f"group-{g}": 2 for g in range(150)}


def test_shared_prefix_completion_prompts_start_with_the_shared_context() -> None:
    requests = take(SharedPrefix(num_groups=2, prompts_per_group=3, chat=False), 6)
    for group in ("group-0", "group-1"):
        prompts = [r.prompt for r in requests if r.group == group]
        prefix = prompts[0][: 2048 * 4 - 1]
        assert all(p.startswith(prefix) for p in prompts) and len(set(prompts)) == 3


def test_multi_turn_each_turn_extends_the_previous_one() -> None:
    requests = take(MultiTurn(turns=3, active=2, system_prompt_len=16), 12)
    by_conversation: dict[str, list[WorkloadRequest]] = {}
    for request in requests:
        by_conversation.setdefault(request.group, []).append(request)
    assert sorted(by_conversation) == [f"conversation-{i}" for i in range(4)]
    for turns in by_conversation.values():
        assert len(turns) == 3
        for earlier, later in itertools.pairwise(turns):
            assert later.messages[: len(earlier.messages)] == earlier.messages
            assert len(later.messages) == len(earlier.messages) + 2
            assert later.messages[len(earlier.messages)]["role"] == "assistant"


def test_tiered_adapters_split_traffic_60_30_10() -> None:
    adapters = tiered_adapters(15)
    assert len(adapters) == 15
    assert sum(a.weight for a in adapters) == pytest.approx(1.0)
    assert [round(a.weight, 3) for a in adapters[::5]] == [0.12, 0.06, 0.02]
    mix = LoraMix(Synthetic(input_len=fixed(8), output_len=fixed(4)), adapters)
    counts = Counter(r.model for r in take(mix, 6000))
    hot = sum(counts[f"lora-{i}"] for i in range(5)) / 6000
    cold = sum(counts[f"lora-{i}"] for i in range(10, 15)) / 6000
    assert hot == pytest.approx(0.6, abs=0.03) and cold == pytest.approx(0.1, abs=0.02)
    assert take(mix, 50) == take(mix, 50)
    with pytest.raises(ValueError):
        tiered_adapters(2)


def test_jsonl_prompts_cycle_and_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"prompt": "hello", "max_tokens": 5}\n\n'
        '{"messages": [{"role": "user", "content": "hi"}], "model": "a", "tenant": "t"}\n'
    )
    requests = take(JsonlPrompts(good, max_tokens=9), 4)
    assert [r.max_tokens for r in requests] == [5, 9, 5, 9]
    assert requests[1].messages == ({"role": "user", "content": "hi"},)
    assert requests[1].model == "a" and requests[1].tenant == "t"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "x", "max_tokens": -1}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: 'max_tokens' must be a positive"):
        load_jsonl(bad)
    bad.write_text('{"prompt": "ok", "colour": 1}\n')
    with pytest.raises(DatasetError, match=r":1: unknown keys \['colour'\]"):
        load_jsonl(bad)
    with pytest.raises(DatasetError, match="cannot read"):
        load_jsonl(tmp_path / "missing.jsonl")


def test_sharegpt_uses_the_first_exchange_and_filters(tmp_path: Path) -> None:
    def conversation(question: str, answer: str) -> dict[str, object]:
        return {
            "id": "x",
            "conversations": [
                {"from": "human", "value": question},
                {"from": "gpt", "value": answer},
            ],
        }

    path = tmp_path / "sharegpt.json"
    path.write_text(
        json.dumps(
            [
                conversation("What is a KV cache? " * 4, "It stores keys and values. " * 10),
                conversation("hi", "hello"),  # too short: filtered out
                {"id": "broken"},
                conversation("Explain prefix caching please.", "Reuse of computed blocks " * 20),
            ]
        )
    )
    requests = take(ShareGpt(path, model="m"), 4)
    assert {r.messages[0]["content"][:7] for r in requests} == {"What is", "Explain"}
    assert all(r.model == "m" and r.max_tokens >= 4 for r in requests)
    assert take(ShareGpt(path), 6) == take(ShareGpt(path), 6)
    path.write_text("[{")
    with pytest.raises(DatasetError, match="invalid JSON"):
        take(ShareGpt(path), 1)


CONVERSATION = {
    "conversations": [
        {"from": "human", "value": "What does a prefix cache keep?"},
        {"from": "gpt", "value": "Computed key and value blocks of earlier prompts."},
    ]
}


def test_sharegpt_file_errors_name_the_line_or_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "sharegpt.jsonl"
    path.write_text("\n".join([json.dumps(CONVERSATION)] * 3 + ['{"conversations": [oops']))
    with pytest.raises(DatasetError, match=r"sharegpt.jsonl:4: invalid JSON"):
        take(ShareGpt(path), 1)
    path.write_text(json.dumps({"data": [CONVERSATION]}, indent=2))
    with pytest.raises(DatasetError, match=r"sharegpt.jsonl: the top level is an object"):
        take(ShareGpt(path), 1)
    path.write_text(json.dumps([CONVERSATION], indent=2).replace("cache", "\u2028cache"))
    assert len(take(ShareGpt(path), 2)) == 2


def test_jsonl_priority_is_not_a_key(tmp_path: Path) -> None:
    # the gateway takes no numeric priority from a request: a silently dropped key would lie
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "hi", "priority": 1}\n')
    with pytest.raises(DatasetError, match=r":1: unknown keys \['priority'\]"):
        load_jsonl(path)


@pytest.mark.parametrize("kind", ["jsonl", "sharegpt"])
def test_a_file_that_is_not_utf8_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"data.{kind}"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    dataset = JsonlPrompts(path) if kind == "jsonl" else ShareGpt(path)
    with pytest.raises(DatasetError, match=rf"data.{kind}:2: not UTF-8 text"):
        take(dataset, 1)
