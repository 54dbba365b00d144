"""The KV block pool: ref counts, a prefix-hash map and an LRU free queue. Mechanism only.

A block with no references sits in the free queue and may still hold a cached prefix; it is
reused by a request whose prefix hashes match (taken out of the queue) or recycled for new
tokens when it reaches the front (its hash forgotten: an eviction). The pool never decides who
gets blocks; it reports "no room" by returning None and the scheduler decides whom to preempt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class BlockPool:
    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self._refs = [0] * num_blocks
        self._hashes: list[int | None] = [None] * num_blocks
        # Insertion-ordered: the front is the least recently freed block, evicted first.
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._cached: dict[int, int] = {}
        self.evictions = 0

    @property
    def num_free(self) -> int:
        return len(self._free)

    def usage(self) -> float:
        """Fraction of blocks referenced by requests (vllm:kv_cache_usage_perc)."""
        return 1.0 - len(self._free) / self.num_blocks

    def lookup(self, block_hash: int) -> int | None:
        return self._cached.get(block_hash)

    def is_free(self, block: int) -> bool:
        return self._refs[block] == 0

    def allocate(self, n: int) -> list[int] | None:
        """n fresh blocks from the front of the free queue, or None when there are fewer."""
        if n > len(self._free):
            return None
        blocks = []
        popitem = self._free.popitem
        for _ in range(n):
            block, _ = popitem(last=False)
            old = self._hashes[block]
            if old is not None:
                del self._cached[old]
                self._hashes[block] = None
                self.evictions += 1
            self._refs[block] = 1
            blocks.append(block)
        return blocks

    def touch(self, blocks: Iterable[int]) -> None:
        """Take a reference on cached blocks (a prefix hit), removing free ones from the queue."""
        refs = self._refs
        for block in blocks:
            if refs[block] == 0:
                del self._free[block]
            refs[block] += 1

    def free(self, blocks: Iterable[int]) -> None:
        """Drop a reference; pass a request's blocks tail first so its tail is evicted first."""
        refs = self._refs
        free = self._free
        for block in blocks:
            refs[block] -= 1
            if refs[block] == 0:
                free[block] = None

    def cache(self, block: int, block_hash: int) -> None:
        """Record a full block under its prefix hash; an existing entry for the hash is kept."""
        if block_hash not in self._cached and self._hashes[block] is None:
            self._cached[block_hash] = block
            self._hashes[block] = block_hash

    def reset_cache(self) -> None:
        """Forget every cached prefix (blocks in use keep their contents)."""
        self._cached.clear()
        self._hashes = [None] * self.num_blocks
