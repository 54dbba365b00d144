"""The engine core: batching order, chunked prefill, prefix caching, preemption, LoRA slots."""

from __future__ import annotations

import dataclasses

import pytest

from tokenway.sim import tokenizer
from tokenway.sim.engine import EngineCore, StepPlan
from tokenway.sim.profiles import Profile, get_profile
from tokenway.sim.request import SimRequest, Status


def _profile(**changes: object) -> Profile:
    return dataclasses.replace(get_profile("h100-8b"), **changes)  # type: ignore[arg-type]


def _req(name: str, tokens: int, out: int, lora: str | None = None, text: str = "") -> SimRequest:
    body = (text or name) * tokens
    return SimRequest(name, tokenizer.encode(body[: tokens * 4].ljust(tokens * 4)), out, 0.0, lora)


def _run(engine: EngineCore, now: float = 0.0, max_steps: int = 1) -> list[StepPlan]:
    plans = []
    while engine.has_work:
        plan = engine.schedule(now, max_steps=max_steps)
        assert plan is not None
        engine.apply(plan)
        plans.append(plan)
        now = plan.end
    return plans


def test_decodes_are_scheduled_before_new_prefills_and_waiting_is_fcfs() -> None:
    engine = EngineCore(_profile(max_num_batched_tokens=100))
    first = _req("a", 40, 5)
    engine.add_request(first, 0.0)
    engine.apply(engine.schedule(0.0))  # a's prompt is computed: it now decodes
    late = [_req(n, 60, 5) for n in ("b", "c")]
    for r in late:
        engine.add_request(r, 0.0)
    plan = engine.schedule(1.0)
    assert plan is not None
    assert plan.decodes == 1
    # 99 tokens left after a's decode: b (first in) gets 60, c gets the remaining 39 as a chunk.
    assert [(r.request_id, n) for r, n in plan.scheduled] == [("b", 60), ("c", 39)]


def test_long_prompt_is_prefilled_in_chunks_while_others_keep_decoding() -> None:
    engine = EngineCore(_profile(max_num_batched_tokens=64))
    short = _req("s", 8, 20)
    engine.add_request(short, 0.0)
    engine.apply(engine.schedule(0.0))
    long = _req("l", 200, 2)
    engine.add_request(long, 0.0)
    chunks = []
    while long.first_token_at is None:
        plan = engine.schedule(0.0)
        assert plan is not None
        assert plan.decodes == 1, "the short request decodes in every step"
        chunks.extend(n for r, n in plan.scheduled if r is long)
        engine.apply(plan)
    assert chunks == [63, 63, 63, 11]


def test_identical_prefix_hits_only_full_cached_blocks() -> None:
    engine = EngineCore(_profile())
    engine.add_request(_req("a", 100, 2, text="shared "), 0.0)
    _run(engine)
    second = _req("b", 100, 2, text="shared ")
    engine.add_request(second, 0.0)
    _run(engine)
    # 100 prompt tokens: 6 full blocks of 16 are cached and at least one token is recomputed.
    assert second.num_cached_tokens == 96
    assert engine.stats.prefix_cache_hits == 96
    assert engine.stats.prefix_cache_queries == 200


def test_prefix_cache_is_per_adapter() -> None:
    engine = EngineCore(_profile(), max_loras=2)
    engine.add_request(_req("a", 100, 2, lora="x", text="shared "), 0.0)
    _run(engine)
    other = _req("b", 100, 2, lora="y", text="shared ")
    engine.add_request(other, 0.0)
    _run(engine)
    assert other.num_cached_tokens == 0


def test_freed_blocks_are_evicted_tail_first() -> None:
    engine = EngineCore(_profile(num_gpu_blocks_override=10))
    engine.add_request(_req("a", 64, 1, text="first "), 0.0)  # 4 full prompt blocks cached
    _run(engine)
    # A new 8-block request must evict two of a's blocks: its tail goes first, so a's
    # leading blocks still hit.
    engine.add_request(_req("b", 120, 1, text="other "), 0.0)
    _run(engine)
    again = _req("c", 64, 1, text="first ")
    engine.add_request(again, 0.0)
    _run(engine)
    assert again.num_cached_tokens == 32


def test_kv_exhaustion_preempts_the_newest_request_which_recomputes() -> None:
    engine = EngineCore(_profile(num_gpu_blocks_override=8))
    old, new = _req("old", 40, 40, text="o "), _req("new", 40, 40, text="n ")
    engine.add_request(old, 0.0)
    engine.add_request(new, 0.0)
    preempted = []
    now = 0.0
    while engine.has_work:
        plan = engine.schedule(now)
        assert plan is not None
        preempted += [r.request_id for r in plan.preempted]
        engine.apply(plan)
        now = plan.end
    assert preempted and set(preempted) == {"new"}
    assert new.num_preemptions == len(preempted) == engine.stats.num_preemptions
    assert old.num_output == new.num_output == 40
    assert engine.kv.pool.num_free == 8


def test_lora_requests_wait_for_a_free_slot_and_loading_costs_time() -> None:
    engine = EngineCore(_profile(lora_load_s=0.5), max_loras=1)
    x1, y1, x2 = _req("x1", 8, 4, "x"), _req("y1", 8, 4, "y"), _req("x2", 8, 4, "x")
    for r in (x1, y1, x2):
        engine.add_request(r, 0.0)
    plan = engine.schedule(0.0)
    assert plan is not None
    assert [r.request_id for r, _ in plan.scheduled] == ["x1", "x2"]
    assert plan.lora_loads == 1 and plan.first_duration > 0.5
    assert list(engine.waiting) == [y1]
    _run(engine, plan.end)
    assert y1.scheduled_at is not None and y1.scheduled_at >= x1.finished_at  # type: ignore[operator]
    assert engine.loras.loads == 2


def test_multi_step_plans_match_single_stepping() -> None:
    itl: dict[int, tuple[list[int], float]] = {}

    def run(max_steps: int) -> list[tuple[str, float, float, int]]:
        engine = EngineCore(_profile(max_num_batched_tokens=256, num_gpu_blocks_override=30))
        reqs = [_req(f"r{i}", 30 + 17 * i, 20 + 9 * i, text=f"{i} ") for i in range(6)]
        for r in reqs:
            engine.add_request(r, 0.0)
        _run(engine, max_steps=max_steps)
        assert engine.kv.pool.num_free == 30
        itl[max_steps] = (engine.stats.itl.counts, engine.stats.itl.sum)
        return [(r.request_id, r.first_token_at, r.finished_at, r.num_preemptions) for r in reqs]  # type: ignore[misc]

    single, multi = run(1), run(1 << 20)
    assert sum(s[3] for s in single) > 0, "the case must exercise preemption"
    assert [s[0] for s in single] == [m[0] for m in multi]
    for s, m in zip(single, multi, strict=True):
        assert s[1:] == pytest.approx(m[1:])
    assert itl[1][0] == itl[1 << 20][0] and itl[1][1] == pytest.approx(itl[1 << 20][1])


def _blocks_in_use(engine: EngineCore) -> int:
    """Blocks the running requests need for the tokens they have computed (no sharing)."""
    size = engine.kv.block_size
    computed = (r.num_computed + engine.decode.progress(r) for r in engine.running)
    return sum(-(-c // size) for c in computed)


def test_kv_accounting_stays_exact_through_aborts_and_preemptions() -> None:
    engine = EngineCore(_profile(num_gpu_blocks_override=24, max_num_batched_tokens=64))
    reqs = [_req(f"r{i}", 16 + 7 * i, 60 + 5 * i, text=f"{i} ") for i in range(6)]
    for r in reqs:
        engine.add_request(r, 0.0)
    now = 0.0
    for step in range(400):
        plan = engine.schedule(now, max_steps=1 + step % 7)
        if plan is None:
            break
        r2 = reqs[2]
        if r2.decoding and (r2.num_computed + engine.decode.progress(r2)) % 16 == 0:
            engine.abort("r2")  # its block for this step was just reserved
        engine.apply(plan)
        now = plan.end
        assert engine.kv.pool.num_blocks - engine.kv.pool.num_free == _blocks_in_use(engine)
    assert not engine.has_work and reqs[2].finish_reason == "abort"
    assert engine.stats.num_preemptions > 0
    assert engine.kv.pool.num_free == 24


def test_abort_frees_blocks_and_slots() -> None:
    engine = EngineCore(_profile(), max_loras=1)
    r = _req("a", 50, 100, lora="x")
    engine.add_request(r, 0.0)
    engine.apply(engine.schedule(0.0))
    engine.apply(engine.schedule(1.0))
    engine.abort("a")
    assert r.status == Status.FINISHED and r.finish_reason == "abort"
    assert engine.kv.pool.num_free == engine.kv.pool.num_blocks
    assert not engine.loras.running and not engine.has_work


def test_max_model_len_stops_generation_with_length() -> None:
    engine = EngineCore(_profile(max_model_len=64))
    r = _req("a", 60, 100)
    r.finish_reason_at_max = "stop"
    engine.add_request(r, 0.0)
    _run(engine)
    assert r.num_output == 4 and r.finish_reason == "length"
