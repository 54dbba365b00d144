"""The engine core: vLLM V1's scheduler as a pure state machine with an injected clock.

One step is two calls. `schedule(now)` decides what runs (every decoding request first, then
prefill chunks for running and then waiting requests within the token budget, FCFS), allocates
KV blocks, preempts the newest running request when blocks run out, and returns a plain
`StepPlan` with its duration. `apply(plan)` advances the requests as if the model had run and
returns what came out. Each request's computed tokens catch up with its token count; chunked
prefill and prefix caching fall out of that one invariant.

Decoding requests live in a `DecodeSet` and advance together without being visited. A caller
may allow `max_steps` > 1: when a step is decode-only and nothing could change before the
first member finishes (no prefill, nobody admissible), the plan covers that many identical
steps; durations grow linearly, so totals and ITL histograms come out in closed form.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tokenway.sim.decode_set import DecodeSet
from tokenway.sim.kv_cache import KVCacheManager
from tokenway.sim.lora import LoraSlots
from tokenway.sim.profiles import Profile
from tokenway.sim.request import SimRequest, Status
from tokenway.sim.stats import EngineStats
from tokenway.sim.step_time import StepCost, StepTimeModel
from tokenway.sim.tokenizer import TOKEN_BYTES, filler


@dataclass(slots=True)
class StepPlan:
    start: float
    scheduled: list[tuple[SimRequest, int]]
    """Prefilling requests in this step and the tokens each computes."""
    decodes: int
    """Decoding requests in this step (one token each)."""
    first_duration: float
    increment: float = 0.0
    preempted: list[SimRequest] = field(default_factory=list)
    lora_loads: int = 0
    repeat: int = field(default=1, init=False)
    """Identical decode-only steps covered by this plan (set through `cover`)."""
    end: float = field(init=False)
    """When the last covered step ends; a field because the event loop reads it constantly."""

    def __post_init__(self) -> None:
        self.end = self.start + self.first_duration

    @property
    def duration(self) -> float:
        k = self.repeat
        return k * self.first_duration + self.increment * k * (k - 1) / 2

    def cover(self, steps: int) -> None:
        self.repeat = steps
        self.end = self.start + self.duration

    def step_start(self, j: int) -> float:
        return self.start + j * self.first_duration + self.increment * j * (j - 1) / 2


@dataclass(slots=True)
class StepOutput:
    now: float
    first_tokens: list[SimRequest]
    """Requests whose prompt finished computing in this plan (their first token)."""
    finished: list[SimRequest]


class EngineCore:
    """One simulated vLLM engine (one replica, one GPU)."""

    def __init__(self, profile: Profile, max_loras: int = 1) -> None:
        self.profile = profile
        self.max_num_batched_tokens = profile.max_num_batched_tokens
        self.max_num_seqs = profile.max_num_seqs
        self.max_model_len = profile.max_model_len
        self.kv = KVCacheManager(profile.num_gpu_blocks, profile.block_size)
        self.decode = DecodeSet(profile.block_size, profile.max_model_len)
        self.loras = LoraSlots(max_loras)
        self.step_time = StepTimeModel(profile)
        self.stats = EngineStats(max_model_len=profile.max_model_len)
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        """Every running request in admission order (the newest is preempted first)."""
        self.prefilling: list[SimRequest] = []
        """Running requests still computing their prompt, in admission order."""
        self.requests: dict[str, SimRequest] = {}
        self.steps = 0

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def num_output(self, req: SimRequest) -> int:
        """Output tokens the request has produced so far."""
        return req.num_output + self.decode.progress(req)

    def add_request(self, req: SimRequest, now: float) -> None:
        req.queued_at = now
        req.status = Status.WAITING
        self.requests[req.request_id] = req
        self.waiting.append(req)

    def abort(self, request_id: str) -> SimRequest | None:
        req = self.requests.pop(request_id, None)
        if req is None:
            return None
        if req.status == Status.RUNNING:
            self._leave_running(req)
            self._release(req)
        elif req.status == Status.WAITING:
            self.waiting.remove(req)
        req.status = Status.FINISHED
        req.finish_reason = "abort"
        return req

    # -- scheduling -------------------------------------------------------------------------

    def schedule(self, now: float, max_steps: int = 1, until: float = math.inf) -> StepPlan | None:
        """Plan the next step (or stretch of identical decode steps); None when idle."""
        if not self.has_work:
            return None
        scheduled: list[tuple[SimRequest, int]] = []
        preempted: list[SimRequest] = []
        budget = self._schedule_decodes(preempted)
        budget = self._schedule_prefills(budget, scheduled, preempted)
        loads = admitted = 0
        if not preempted:
            admitted, loads = self._schedule_waiting(now, budget, scheduled)
        decodes = self.decode.size
        if not scheduled and not decodes:
            return StepPlan(now, [], 0, 0.0, preempted=preempted) if preempted else None
        cost = self._cost(scheduled, loads)
        plan = StepPlan(
            now,
            scheduled,
            decodes,
            self.step_time.seconds(cost),
            preempted=preempted,
            lora_loads=loads,
        )
        if max_steps > 1 and not scheduled and not preempted and not admitted:
            self._extend(plan, max_steps, until)
        return plan

    def _schedule_decodes(self, preempted: list[SimRequest]) -> int:
        decode, pool = self.decode, self.kv.pool
        while decode.size and decode.new_blocks(1) > pool.num_free:
            self._preempt_newest(preempted)
        decode.reserve(1, pool)
        return self.max_num_batched_tokens - decode.size

    def _schedule_prefills(
        self, budget: int, scheduled: list[tuple[SimRequest, int]], preempted: list[SimRequest]
    ) -> int:
        kv = self.kv
        i = 0
        while i < len(self.prefilling) and budget > 0:
            req = self.prefilling[i]
            num_new = min(req.num_tokens - req.num_computed, budget)
            while not kv.allocate(req, num_new):
                victim = self._preempt_newest(preempted)
                if victim is req:
                    return budget
            scheduled.append((req, num_new))
            budget -= num_new
            i += 1
        return budget

    def _schedule_waiting(
        self, now: float, budget: int, scheduled: list[tuple[SimRequest, int]]
    ) -> tuple[int, int]:
        waiting, running, kv = self.waiting, self.running, self.kv
        skipped: list[SimRequest] = []
        admitted = loads = 0
        while waiting and budget > 0 and len(running) < self.max_num_seqs:
            req = waiting[0]
            if req.lora is not None and not self.loras.can_run(req.lora):
                skipped.append(waiting.popleft())
                continue
            hits = kv.computed_prefix(req) if req.num_computed == 0 else []
            hit_tokens = len(hits) * kv.block_size
            num_new = min(req.num_tokens - req.num_computed - hit_tokens, budget)
            if not kv.allocate(req, num_new, hits):
                break
            waiting.popleft()
            if req.num_cached_tokens is None:
                req.num_cached_tokens = hit_tokens
            self.stats.prefix_cache_queries += req.num_tokens
            self.stats.prefix_cache_hits += hit_tokens
            req.num_computed += hit_tokens
            req.status = Status.RUNNING
            if req.scheduled_at is None:
                req.scheduled_at = now
            if req.lora is not None and self.loras.start(req.lora):
                loads += 1
            running.append(req)
            self.prefilling.append(req)
            scheduled.append((req, num_new))
            budget -= num_new
            admitted += 1
        if skipped:
            waiting.extendleft(reversed(skipped))
        return admitted, loads

    def _preempt_newest(self, preempted: list[SimRequest]) -> SimRequest:
        """Recompute preemption: drop the newest request's KV and queue it first again."""
        victim = self.running[-1]
        self._leave_running(victim)
        self._sync_tokens(victim)
        self.kv.cache_full_blocks(victim)
        self._release(victim)
        victim.num_computed = 0
        victim.status = Status.WAITING
        victim.num_preemptions += 1
        self.stats.num_preemptions += 1
        self.waiting.appendleft(victim)
        preempted.append(victim)
        return victim

    def _leave_running(self, req: SimRequest) -> None:
        if req.decoding:
            self.decode.remove(req, self.kv.pool)
        else:
            self.prefilling.remove(req)
        self.running.remove(req)

    def _release(self, req: SimRequest) -> None:
        self.kv.free(req)
        if req.lora is not None:
            self.loras.stop(req.lora)

    def _cost(self, scheduled: list[tuple[SimRequest, int]], lora_loads: int) -> StepCost:
        decodes = self.decode.size
        context = self.decode.context_sum()
        new_tokens, kv_tokens, pairs = decodes, context + decodes, context + decodes / 2
        for req, n in scheduled:
            ctx = req.num_computed
            new_tokens += n
            kv_tokens += ctx + n
            pairs += n * (ctx + n / 2)
        return StepCost(decodes + len(scheduled), new_tokens, pairs, kv_tokens, lora_loads)

    def _extend(self, plan: StepPlan, max_steps: int, until: float) -> None:
        """Cover as many identical decode steps as nothing can interrupt."""
        decode = self.decode
        k = min(max_steps, decode.steps_to_first_finish())
        if k <= 1:
            return
        free = self.kv.pool.num_free
        k = _max_k(k, lambda n: decode.new_blocks(n) <= free)
        plan.increment = self.step_time.decode_increment(decode.size)
        if until < math.inf:
            k = _max_k(k, lambda n: plan.step_start(n - 1) < until)
        plan.cover(k)

    def shorten(self, plan: StepPlan, until: float) -> None:
        """Cut a multi-step plan to the steps that start before `until` (a new arrival)."""
        if plan.repeat > 1:
            plan.cover(_max_k(plan.repeat, lambda n: plan.step_start(n - 1) < until))

    # -- applying ---------------------------------------------------------------------------

    def apply(self, plan: StepPlan) -> StepOutput:
        """Advance the requests as if the model ran the plan; the outputs are at plan.end."""
        k = plan.repeat
        self.steps += k
        end = plan.end
        stats = self.stats
        decodes = self.decode.size
        finished = self.decode.advance(k, self.kv.pool)
        if decodes:
            stats.generation_tokens += decodes * k
            stats.itl.observe_series(plan.first_duration, plan.increment, k, decodes)
        first_tokens: list[SimRequest] = []
        for req, num_new in plan.scheduled:
            if req.status != Status.RUNNING:
                continue
            req.num_computed += num_new
            self.kv.cache_full_blocks(req)
            if req.num_computed < req.num_tokens:
                continue
            self.prefilling.remove(req)
            req.num_output += 1
            stats.generation_tokens += 1
            if req.first_token_at is None:
                req.first_token_at = end
                stats.ttft.observe(end - req.arrival)
                stats.prompt_tokens += req.num_prompt_tokens
            first_tokens.append(req)
            if req.num_output >= req.max_tokens or req.num_tokens >= self.max_model_len:
                finished.append(req)
            else:
                self.decode.add(req)
        for req in finished:
            self._finish(req, end)
        if finished:
            self.running = [r for r in self.running if r.status == Status.RUNNING]
        return StepOutput(end, first_tokens, finished)

    def _sync_tokens(self, req: SimRequest) -> None:
        """Write the output bytes counted since the last sync (needed to hash output blocks)."""
        missing = req.num_tokens - len(req.tokens) // TOKEN_BYTES
        if missing > 0:
            req.tokens += filler(req.seed, req.num_output - missing, missing)

    def _finish(self, req: SimRequest, now: float) -> None:
        reason = req.finish_reason_at_max if req.num_output >= req.max_tokens else "length"
        req.status = Status.FINISHED
        req.finish_reason = reason
        req.finished_at = now
        req.last_token_at = now
        self._sync_tokens(req)
        self.kv.cache_full_blocks(req)
        self._release(req)
        del self.requests[req.request_id]
        stats = self.stats
        stats.request_success[reason] += 1
        scheduled_at = req.scheduled_at if req.scheduled_at is not None else now
        first = req.first_token_at if req.first_token_at is not None else now
        stats.e2e.observe(now - req.arrival)
        stats.queue.observe(scheduled_at - req.queued_at)
        stats.inference.observe(now - scheduled_at)
        stats.prefill.observe(first - scheduled_at)
        stats.decode.observe(now - first)
        stats.prompt_len.observe(req.num_prompt_tokens)
        stats.generation_len.observe(req.num_output)
        if req.requested_max_tokens is not None:
            stats.max_tokens_param.observe(req.requested_max_tokens)


def _max_k(high: int, ok: Callable[[int], bool]) -> int:
    """The largest k in [1, high] with ok(k), assuming ok is monotone (true then false)."""
    if ok(high):
        return high
    lo, hi = 1, high
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
