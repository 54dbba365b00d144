"""Requests in steady decode, advanced together in O(1) per step.

Every step of vLLM's scheduler gives each decoding request exactly one token, so the engine
keeps one step counter for all of them and each member only remembers where it joined. Sums
kept here answer what a step needs without visiting members: the batch size, the total
context (for the step time), the KV blocks the members need in j more steps (grouped by each
member's position inside its last block), and who finishes first (a heap). Blocks are
taken from the pool as the members' contexts grow, held as spares, and handed to a member
when it leaves, so the pool's eviction order is the same as allocating per request.
"""

from __future__ import annotations

import heapq
import itertools

from tokenway.sim.block_pool import BlockPool
from tokenway.sim.request import SimRequest


class DecodeSet:
    def __init__(self, block_size: int, max_model_len: int) -> None:
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.steps = 0
        """Decode steps run so far; a member's progress is steps minus where it joined."""
        self.size = 0
        self._x_sum = 0
        self._phases = [0] * block_size
        self._assigned = 0
        self._spare: list[int] = []
        self._reserved = 0
        """Steps ahead whose blocks are already in `_spare`."""
        self._heap: list[tuple[int, int, SimRequest, int]] = []
        self._seq = itertools.count()

    def context_sum(self) -> int:
        """Sum of the members' computed tokens before the next step."""
        return self._x_sum + self.size * self.steps

    def _crossings(self, after: int, upto: int) -> int:
        """Members' block-boundary crossings in steps after+1 .. upto from now."""
        size = self.block_size
        phases = self._phases
        full, rest = divmod(upto - after, size)
        # Step i from now crosses for members in phase -(steps + after + i) mod size: for
        # i = 1..rest that is the cyclic window of `rest` phases ending just below `end`.
        end = -(self.steps + after) % size
        first = end - rest
        window = sum(phases[first:end]) if first >= 0 else sum(phases[:end]) + sum(phases[first:])
        return self.size * full + window

    def new_blocks(self, ahead: int) -> int:
        """Blocks still to take from the pool so the members can run `ahead` more steps."""
        return self._crossings(self._reserved, ahead) if ahead > self._reserved else 0

    def reserve(self, ahead: int, pool: BlockPool) -> None:
        """Take the blocks for `ahead` more steps now (the scheduler checked there is room)."""
        if not self.size:
            return
        need = self.new_blocks(ahead)
        if need > 0:
            blocks = pool.allocate(need)
            assert blocks is not None, "the scheduler checked room for these steps"
            self._spare.extend(blocks)
        self._reserved = max(self._reserved, ahead)

    def steps_to_first_finish(self) -> int:
        heap = self._heap
        while heap and heap[0][2].decode_epoch != heap[0][3]:
            heapq.heappop(heap)
        return heap[0][0] - self.steps if heap else 0

    def add(self, req: SimRequest) -> None:
        """A request whose prompt is computed joins (num_computed == num_tokens - 1)."""
        x = req.num_computed - self.steps
        m = (x - 1) % self.block_size
        req.decoding = True
        req.decode_joined = self.steps
        req.decode_x = x
        self._x_sum += x
        self._phases[m] += 1
        self._assigned += len(req.blocks)
        self.size += 1
        left = min(req.max_tokens - req.num_output, self.max_model_len - req.num_tokens)
        heapq.heappush(self._heap, (self.steps + left, next(self._seq), req, req.decode_epoch))

    def advance(self, steps: int, pool: BlockPool) -> list[SimRequest]:
        """Run `steps` decode steps; returns the members that reached their last token."""
        if not self.size:
            self._reserved = 0
            return []
        self.reserve(steps, pool)
        self.steps += steps
        self._reserved -= steps
        done: list[SimRequest] = []
        heap = self._heap
        while heap and heap[0][0] <= self.steps:
            _, _, req, epoch = heapq.heappop(heap)
            if req.decode_epoch == epoch:
                self.remove(req, pool)
                done.append(req)
        return done

    def progress(self, req: SimRequest) -> int:
        """Tokens the member produced since it joined."""
        return self.steps - req.decode_joined if req.decoding else 0

    def remove(self, req: SimRequest, pool: BlockPool) -> None:
        """The member leaves (finish, preemption, abort) with its counters and blocks settled;
        blocks reserved for its coming steps go back to the pool."""
        done = self.steps - req.decode_joined
        req.num_output += done
        req.num_computed += done
        need = -(-req.num_computed // self.block_size) - len(req.blocks)
        if need > 0:
            assert need <= len(self._spare), "spares cover every member's growth"
            req.blocks.extend(self._spare[-need:])
            del self._spare[-need:]
        x = req.decode_x
        m = (x - 1) % self.block_size
        size = self.block_size
        unused = sum(1 for i in range(1, self._reserved + 1) if (m + self.steps + i) % size == 0)
        if unused:
            pool.free(self._spare[-unused:])
            del self._spare[-unused:]
        self._x_sum -= x
        self._phases[m] -= 1
        self._assigned -= len(req.blocks) - max(need, 0)
        self.size -= 1
        req.decoding = False
        req.decode_epoch += 1
