"""The KV block pool: ref counts, a prefix-hash map and an LRU free queue. Mechanism only.

A block with no references sits in the free queue and may still hold a cached prefix; it is
reused by a request whose prefix hashes match (taken out of the queue) or recycled for new
tokens when it reaches the front (its hash forgotten: an eviction). The pool never decides who
gets blocks; it reports "no room" by returning None and the scheduler decides whom to preempt.

Requests move tens of blocks at a time, so the common cases (fresh blocks, single owners, new
hashes) run as bulk operations on the underlying dicts and lists.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from itertools import islice, repeat


def _run(iterator: Iterable[object]) -> None:
    deque(iterator, maxlen=0)


class BlockPool:
    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self._refs = [0] * num_blocks
        # Insertion-ordered: the front is the least recently freed block, evicted first.
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._cached: dict[int, int] = {}
        """Prefix hash -> block holding it."""
        self._hash_of: dict[int, int] = {}
        """Block -> the prefix hash it is cached under (the inverse of `_cached`)."""

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
        free = self._free
        if n > len(free):
            return None
        blocks = list(islice(free, n))
        _run(map(free.__delitem__, blocks))
        hash_of = self._hash_of
        evicted = hash_of.keys() & blocks
        if evicted:
            _run(map(self._cached.__delitem__, map(hash_of.pop, evicted)))
        _run(map(self._refs.__setitem__, blocks, repeat(1)))
        return blocks

    def touch(self, blocks: Iterable[int]) -> None:
        """Take a reference on cached blocks (a prefix hit), removing free ones from the queue."""
        refs = self._refs
        for block in blocks:
            if refs[block] == 0:
                del self._free[block]
            refs[block] += 1

    def free(self, blocks: Sequence[int]) -> None:
        """Drop a reference; pass a request's blocks tail first so its tail is evicted first."""
        if not blocks:
            return
        refs = self._refs
        if max(map(refs.__getitem__, blocks)) == 1:
            _run(map(refs.__setitem__, blocks, repeat(0)))
            self._free.update(dict.fromkeys(blocks))
            return
        free = self._free
        for block in blocks:
            refs[block] -= 1
            if refs[block] == 0:
                free[block] = None

    def cache(self, blocks: Sequence[int], block_hashes: Sequence[int]) -> None:
        """Record full blocks under their prefix hashes; an existing entry for a hash is kept."""
        cached, hash_of = self._cached, self._hash_of
        if cached.keys().isdisjoint(block_hashes) and hash_of.keys().isdisjoint(blocks):
            cached.update(zip(block_hashes, blocks, strict=True))
            hash_of.update(zip(blocks, block_hashes, strict=True))
            return
        for block, block_hash in zip(blocks, block_hashes, strict=True):
            if block_hash not in cached and block not in hash_of:
                cached[block_hash] = block
                hash_of[block] = block_hash
