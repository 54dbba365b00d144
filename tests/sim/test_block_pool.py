"""The block pool against a plain model of vLLM's free queue: same blocks, same evictions.

The pool's free queue is an append-only list with stale entries left by prefix hits; this
checks it hands out exactly the blocks an ordered dict of free blocks would, through random
allocations, frees (tail first), caching and revivals of cached free blocks.
"""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest

from tokenway.sim.block_pool import BlockPool


class PlainPool:
    """One ordered dict of free blocks, front evicted first, and a hash map: obviously right."""

    def __init__(self, num_blocks: int) -> None:
        self.refs = [0] * num_blocks
        self.free_queue: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self.cached: dict[int, int] = {}
        self.hash_of: dict[int, int] = {}

    def allocate(self, n: int) -> list[int] | None:
        if n > len(self.free_queue):
            return None
        blocks = [self.free_queue.popitem(last=False)[0] for _ in range(n)]
        for block in blocks:
            self.refs[block] = 1
            if block in self.hash_of:
                del self.cached[self.hash_of.pop(block)]
        return blocks

    def touch(self, blocks: list[int]) -> None:
        for block in blocks:
            if self.refs[block] == 0:
                del self.free_queue[block]
            self.refs[block] += 1

    def free(self, blocks: list[int]) -> None:
        for block in blocks:
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free_queue[block] = None

    def cache(self, blocks: list[int], hashes: list[int]) -> None:
        for block, block_hash in zip(blocks, hashes, strict=True):
            if block_hash not in self.cached and block not in self.hash_of:
                self.cached[block_hash] = block
                self.hash_of[block] = block_hash


@pytest.mark.parametrize("seed", range(40))
def test_pool_matches_the_plain_model(seed: int) -> None:
    rng = random.Random(seed)
    num_blocks = rng.randint(8, 120)
    pool, plain = BlockPool(num_blocks), PlainPool(num_blocks)
    owners: list[list[int]] = []
    hashes: list[int] = []
    revivals = 0
    for _ in range(300):
        op = rng.random()
        if op < 0.35:
            n = rng.randint(0, 12)
            got = pool.allocate(n)
            assert got == plain.allocate(n)
            if got:
                owners.append(got)
        elif op < 0.6 and owners:
            blocks = owners.pop(rng.randrange(len(owners)))[::-1]
            pool.free(blocks)
            plain.free(blocks)
        elif op < 0.8 and owners:
            blocks = rng.choice(owners)
            new = list(range(len(hashes), len(hashes) + len(blocks)))
            if new and hashes and rng.random() < 0.3:
                new[0] = rng.choice(hashes)  # a hash another block may already hold
            hashes.extend(new)
            pool.cache(blocks, new)
            plain.cache(blocks, new)
        elif hashes:
            wanted = rng.sample(hashes, min(len(hashes), 6))
            hits = [pool.lookup(h) for h in wanted]
            assert hits == [plain.cached.get(h) for h in wanted]
            unique = list(dict.fromkeys(b for b in hits if b is not None))
            revivals += sum(pool.is_free(b) for b in unique)
            pool.touch(unique)
            plain.touch(unique)
            if unique:
                owners.append(unique)
        assert pool.num_free == len(plain.free_queue)
        assert [pool.is_free(b) for b in range(num_blocks)] == [r == 0 for r in plain.refs]
    assert revivals > 0 or seed % 10, "most seeds revive cached free blocks"
