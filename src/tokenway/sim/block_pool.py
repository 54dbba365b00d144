"""The KV block pool: ref counts, a prefix-hash map and an LRU free queue. Mechanism only.

A block with no references sits in the free queue and may still hold a cached prefix; it is
reused by a request whose prefix hashes match (taken out of the queue) or recycled for new
tokens when it reaches the front (its hash forgotten: an eviction). The pool never decides who
gets blocks; it reports "no room" by returning None and the scheduler decides whom to preempt.

Requests move tens of blocks at a time, so every per-block table is a flat list indexed by
block id and the common cases (fresh blocks, single owners, new hashes) are bulk slice and
map operations that run in C. The free queue is an append-only list read from a moving head:
freeing appends, allocating advances the head, and a block taken out of the middle by a
prefix hit leaves a stale entry behind that allocation skips. A block's stale entries always
come before its live one (it can only be freed again after the hit), so counting them per
block is enough to tell them apart. Stale entries are rare (only revived cached blocks make
them), so allocation takes a plain slice whenever there are none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from itertools import repeat
from operator import is_not


def _run(iterator: Iterable[object]) -> None:
    deque(iterator, maxlen=0)


_not_none = partial(is_not, None)


class BlockPool:
    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self._refs = [0] * num_blocks
        self._queue = list(range(num_blocks))
        """Free-queue entries; the live ones from `_head` on, least recently freed first."""
        self._head = 0
        self._num_free = num_blocks
        self._stale: dict[int, int] = {}
        """Block -> its dead entries at or after the head."""
        self._cached: dict[int, int] = {}
        """Prefix hash -> block holding it."""
        self._hash_of: list[int | None] = [None] * num_blocks
        """Block -> the prefix hash it is cached under (the inverse of `_cached`)."""

    @property
    def num_free(self) -> int:
        return self._num_free

    def usage(self) -> float:
        """Fraction of blocks referenced by requests (vllm:kv_cache_usage_perc)."""
        return 1.0 - self._num_free / self.num_blocks

    def lookup(self, block_hash: int) -> int | None:
        return self._cached.get(block_hash)

    def is_free(self, block: int) -> bool:
        return self._refs[block] == 0

    def allocate(self, n: int) -> list[int] | None:
        """n fresh blocks from the front of the free queue, or None when there are fewer."""
        if n > self._num_free:
            return None
        if n <= 0:
            return []
        queue, head = self._queue, self._head
        if not self._stale:
            blocks = queue[head : head + n]
            head += n
        else:
            blocks, head = self._take_live(n)
        self._num_free -= n
        _run(map(self._refs.__setitem__, blocks, repeat(1)))
        hash_of = self._hash_of
        evicted = list(filter(_not_none, map(hash_of.__getitem__, blocks)))
        if evicted:
            _run(map(self._cached.__delitem__, evicted))
            _run(map(hash_of.__setitem__, blocks, repeat(None)))
        if head > 4096 and head * 2 > len(queue):
            # Compact so the list stays about as long as the pool.
            del queue[:head]
            head = 0
        self._head = head
        return blocks

    def _take_live(self, n: int) -> tuple[list[int], int]:
        """The first n live entries from the head, skipping (and dropping) stale ones."""
        queue, stale = self._queue, self._stale
        blocks: list[int] = []
        i = self._head
        while len(blocks) < n:
            block = queue[i]
            dead = stale.get(block, 0)
            if dead == 0:
                blocks.append(block)
            elif dead == 1:
                del stale[block]
            else:
                stale[block] = dead - 1
            i += 1
        return blocks, i

    def touch(self, blocks: Iterable[int]) -> None:
        """Take a reference on cached blocks (a prefix hit), removing free ones from the queue."""
        refs, stale = self._refs, self._stale
        for block in blocks:
            if refs[block] == 0:
                stale[block] = stale.get(block, 0) + 1
                self._num_free -= 1
            refs[block] += 1

    def free(self, blocks: Sequence[int]) -> None:
        """Drop a reference; pass a request's blocks tail first so its tail is evicted first."""
        if not blocks:
            return
        refs = self._refs
        if max(map(refs.__getitem__, blocks)) == 1:
            released: Sequence[int] = blocks
            _run(map(refs.__setitem__, blocks, repeat(0)))
        else:
            out: list[int] = []
            for block in blocks:
                refs[block] -= 1
                if refs[block] == 0:
                    out.append(block)
            released = out
        self._queue.extend(released)
        self._num_free += len(released)

    def cache(self, blocks: Sequence[int], block_hashes: Sequence[int]) -> None:
        """Record full blocks under their prefix hashes; an existing entry for a hash is kept."""
        cached, hash_of = self._cached, self._hash_of
        if cached.keys().isdisjoint(block_hashes) and not any(
            map(_not_none, map(hash_of.__getitem__, blocks))
        ):
            cached.update(zip(block_hashes, blocks, strict=True))
            _run(map(hash_of.__setitem__, blocks, block_hashes))
            return
        for block, block_hash in zip(blocks, block_hashes, strict=True):
            if block_hash not in cached and hash_of[block] is None:
                cached[block_hash] = block
                hash_of[block] = block_hash
