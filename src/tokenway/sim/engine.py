"""The engine core: vLLM V1's scheduler as a pure state machine with an injected clock.

One step is two calls. `schedule(now)` decides what runs (decodes first, then prefill chunks
from the FCFS waiting queue within the token budget), allocates KV blocks, preempts the newest
running request when blocks run out, and returns a plain `StepPlan` with its duration.
`apply(plan)` advances the requests as if the model had run and returns what came out. Each
request's computed tokens catch up with its token count; chunked prefill and prefix caching
fall out of that one invariant.

A caller may allow `max_steps` > 1: when a step is decode-only and nothing else could change
(no prefill, nobody admissible), the plan covers several identical steps at once, bounded by
the first request to finish, free KV blocks and the caller's `until`. Durations then grow
linearly, so totals and ITL histograms are computed in closed form.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """Requests in this step and the tokens each computes in its first step."""
    first_duration: float
    increment: float = 0.0
    repeat: int = 1
    """Identical decode-only steps covered by this plan."""
    preempted: list[SimRequest] = field(default_factory=list)
    lora_loads: int = 0
    prefill_tokens: int = 0

    @property
    def duration(self) -> float:
        k = self.repeat
        return k * self.first_duration + self.increment * k * (k - 1) / 2

    @property
    def end(self) -> float:
        return self.start + self.duration

    def step_start(self, j: int) -> float:
        return self.start + j * self.first_duration + self.increment * j * (j - 1) / 2


@dataclass(slots=True)
class StepOutput:
    now: float
    produced: list[tuple[SimRequest, int]]
    """Requests that produced output tokens in this plan, and how many."""
    finished: list[SimRequest]


class EngineCore:
    """One simulated vLLM engine (one replica, one GPU)."""

    def __init__(self, profile: Profile, max_loras: int = 1, record_itl: bool = True) -> None:
        self.profile = profile
        self.max_num_batched_tokens = profile.max_num_batched_tokens
        self.max_num_seqs = profile.max_num_seqs
        self.max_model_len = profile.max_model_len
        self.kv = KVCacheManager(profile.num_gpu_blocks, profile.block_size)
        self.loras = LoraSlots(max_loras)
        self.step_time = StepTimeModel(profile)
        self.stats = EngineStats(max_model_len=profile.max_model_len)
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self.requests: dict[str, SimRequest] = {}
        self.record_itl = record_itl
        self.steps = 0

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

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
            self.running.remove(req)
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
        budget = self.max_num_batched_tokens
        scheduled: list[tuple[SimRequest, int]] = []
        preempted: list[SimRequest] = []
        budget = self._schedule_running(now, budget, scheduled, preempted)
        loads = 0
        admitted = 0
        if not preempted:
            admitted, loads = self._schedule_waiting(now, budget, scheduled)
        if not scheduled:
            return StepPlan(now, [], 0.0, preempted=preempted) if preempted else None
        cost, prefill = _cost(scheduled, loads)
        plan = StepPlan(
            now,
            scheduled,
            self.step_time.seconds(cost),
            preempted=preempted,
            lora_loads=loads,
            prefill_tokens=prefill,
        )
        if max_steps > 1 and not preempted and not admitted and prefill == 0:
            self._extend(plan, max_steps, until)
        return plan

    def _schedule_running(
        self,
        now: float,
        budget: int,
        scheduled: list[tuple[SimRequest, int]],
        preempted: list[SimRequest],
    ) -> int:
        running = self.running
        kv = self.kv
        size = kv.block_size
        i = 0
        while i < len(running) and budget > 0:
            req = running[i]
            num_new = min(req.num_prompt_tokens + req.num_output - req.num_computed, budget)
            if req.num_computed + num_new > len(req.blocks) * size:
                while not kv.allocate(req, num_new):
                    victim = running.pop()
                    self._preempt(victim)
                    preempted.append(victim)
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
            scheduled.append((req, num_new))
            budget -= num_new
            admitted += 1
        if skipped:
            waiting.extendleft(reversed(skipped))
        return admitted, loads

    def _preempt(self, req: SimRequest) -> None:
        """Recompute preemption: drop its KV and send it back to the head of the queue."""
        self._sync_tokens(req)
        self.kv.cache_full_blocks(req)
        self._release(req)
        req.num_computed = 0
        req.status = Status.WAITING
        req.num_preemptions += 1
        self.stats.num_preemptions += 1
        self.waiting.appendleft(req)

    def _release(self, req: SimRequest) -> None:
        self.kv.free(req)
        if req.lora is not None:
            self.loras.stop(req.lora)

    def _extend(self, plan: StepPlan, max_steps: int, until: float) -> None:
        """Cover as many identical decode steps as nothing can interrupt."""
        reqs = [req for req, _ in plan.scheduled]
        if len(reqs) != len(self.running):
            return
        k = max_steps
        for req in reqs:
            k = min(k, req.max_tokens - req.num_output, self.max_model_len - req.num_tokens)
        if k <= 1:
            return
        k = _max_k(k, lambda n: self._extra_blocks(reqs, n) <= self.kv.pool.num_free)
        plan.increment = self.step_time.decode_increment(len(reqs))
        if until < math.inf:
            k = _max_k(k, lambda n: plan.step_start(n - 1) < until)
        plan.repeat = max(1, k)

    def _extra_blocks(self, reqs: list[SimRequest], steps: int) -> int:
        size = self.kv.block_size
        # Blocks for steps-1 more tokens beyond what the first step allocated.
        return sum(-(-(r.num_computed + steps) // size) - len(r.blocks) for r in reqs)

    def shorten(self, plan: StepPlan, until: float) -> None:
        """Cut a multi-step plan to the steps that start before `until` (a new arrival)."""
        if plan.repeat > 1:
            plan.repeat = _max_k(plan.repeat, lambda n: plan.step_start(n - 1) < until)

    # -- applying ---------------------------------------------------------------------------

    def apply(self, plan: StepPlan) -> StepOutput:
        """Advance every scheduled request as if the model ran the plan; ends at plan.end.

        Output tokens of running requests are counted here but their bytes are written (and
        their full blocks hashed into the prefix cache) only when the request stops running,
        which keeps a step's cost independent of how many tokens it covers.
        """
        k = plan.repeat
        self.steps += k
        end = plan.end
        first_end = plan.start + plan.first_duration
        produced: list[tuple[SimRequest, int]] = []
        finished: list[SimRequest] = []
        stats = self.stats
        kv = self.kv
        record_itl = self.record_itl
        max_model_len = self.max_model_len
        for req, num_new in plan.scheduled:
            if req.status != Status.RUNNING:
                continue
            computed = req.num_computed + num_new
            if computed < req.num_prompt_tokens + req.num_output:
                req.num_computed = computed
                kv.cache_full_blocks(req)
                continue
            if k > 1:
                kv.allocate(req, k - 1)
            req.num_computed = computed + k - 1
            if req.first_token_at is None:
                req.first_token_at = first_end
                stats.ttft.observe(first_end - req.arrival)
                stats.prompt_tokens += req.num_prompt_tokens
                kv.cache_full_blocks(req)
            elif record_itl:
                stats.itl.observe(first_end - req.last_token_at)
            req.num_output += k
            req.last_token_at = end
            produced.append((req, k))
            if req.num_output >= req.max_tokens:
                self._finish(req, req.finish_reason_at_max, end)
                finished.append(req)
            elif req.num_prompt_tokens + req.num_output >= max_model_len:
                self._finish(req, "length", end)
                finished.append(req)
        stats.generation_tokens += k * len(produced)
        if k > 1 and produced and record_itl:
            stats.itl.observe_series(
                plan.first_duration + plan.increment, plan.increment, k - 1, len(produced)
            )
        if finished:
            self.running = [r for r in self.running if r.status == Status.RUNNING]
        return StepOutput(end, produced, finished)

    def _sync_tokens(self, req: SimRequest) -> None:
        """Write the output bytes counted since the last sync (needed to hash output blocks)."""
        missing = req.num_tokens - len(req.tokens) // TOKEN_BYTES
        if missing > 0:
            req.tokens += filler(req.seed, req.num_output - missing, missing)

    def _finish(self, req: SimRequest, reason: str, now: float) -> None:
        req.status = Status.FINISHED
        req.finish_reason = reason
        req.finished_at = now
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


def _cost(scheduled: list[tuple[SimRequest, int]], lora_loads: int) -> tuple[StepCost, int]:
    new_tokens = kv_tokens = prefill = 0
    pairs = 0.0
    for req, n in scheduled:
        ctx = req.num_computed
        new_tokens += n
        kv_tokens += ctx + n
        pairs += n * (ctx + n / 2)
        if ctx + n < req.num_tokens or n > 1:
            prefill += n
    return StepCost(len(scheduled), new_tokens, pairs, kv_tokens, lora_loads), prefill


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
