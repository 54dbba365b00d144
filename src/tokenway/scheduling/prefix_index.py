"""The approximate prefix-cache index: which endpoint probably holds which prompt blocks.

Mechanism only (the prefix-cache scorer is the policy). Prompts are cut into character blocks
(block_size_tokens * 4 characters), hashed as a chain of xxhash64 seeded with the model name,
so a block hash identifies the whole prefix up to it. Each endpoint has an LRU of block hashes;
a reverse map from hash to endpoints makes matching cost O(blocks), not O(blocks x endpoints).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable

import xxhash


def block_hashes(model: str, text: str, block_chars: int, max_blocks: int) -> list[int]:
    """Chained hashes of the full leading blocks of `text` (at most `max_blocks`)."""
    count = min(len(text) // block_chars, max_blocks)
    end = count * block_chars
    chain = xxhash.xxh64_intdigest(model.encode())
    data = text[:end].encode()
    if len(data) == end:
        # ASCII: byte offsets are character offsets, so hash slices of one encoded buffer.
        view = memoryview(data)
        return [
            chain := xxhash.xxh64_intdigest(view[start : start + block_chars], seed=chain)
            for start in range(0, end, block_chars)
        ]
    return [
        chain := xxhash.xxh64_intdigest(text[start : start + block_chars].encode(), seed=chain)
        for start in range(0, end, block_chars)
    ]


class PrefixIndex:
    """Per-endpoint LRU sets of block hashes with a reverse index; capacities may change.

    The reverse index maps a block hash to a bit mask of endpoints (one bit per endpoint URL
    ever seen): plain ints, so hundreds of thousands of entries cost the garbage collector
    nothing and matching is a few integer ANDs per block.
    """

    def __init__(self, capacity: int) -> None:
        self.default_capacity = capacity
        self._owners: dict[int, int] = {}
        self._bits: dict[str, int] = {}
        self._urls: list[str | None] = []
        """Endpoint URL by bit position; None where a forgotten endpoint's bit is free."""
        self._free: list[int] = []
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._capacity: dict[str, int] = {}

    def _bit(self, url: str) -> int:
        bit = self._bits.get(url)
        if bit is None:
            if self._free:
                bit = self._free.pop()
                self._urls[bit.bit_length() - 1] = url
            else:
                bit = 1 << len(self._urls)
                self._urls.append(url)
            self._bits[url] = bit
        return bit

    def _names(self, mask: int) -> list[str]:
        return [url for i, url in enumerate(self._urls) if mask >> i & 1 and url is not None]

    def forget(self, url: str) -> None:
        """Drop everything known about `url` (an endpoint gone from the pool), bit included."""
        bit = self._bits.pop(url, None)
        if bit is None:
            return
        keep, owners = ~bit, self._owners
        for block in self._lru.pop(url, ()):
            remaining = owners[block] & keep
            if remaining:
                owners[block] = remaining
            else:
                del owners[block]
        self._capacity.pop(url, None)
        self._urls[bit.bit_length() - 1] = None
        self._free.append(bit)

    def urls(self) -> list[str]:
        """The endpoints the index holds anything for."""
        return list(self._bits)

    def match(self, hashes: list[int], urls: Iterable[str]) -> dict[str, int]:
        """Consecutive leading blocks each of `urls` holds; endpoints with none are left out."""
        if not hashes:
            return {}
        wanted = 0
        for url in urls:
            wanted |= self._bits.get(url, 0)
        get = self._owners.get
        alive = get(hashes[0], 0) & wanted
        matched: dict[str, int] = {}
        if not alive:
            return matched
        for depth in range(1, len(hashes)):
            still = alive & get(hashes[depth], 0)
            if still != alive:
                for url in self._names(alive & ~still):
                    matched[url] = depth
                alive = still
                if not alive:
                    return matched
        for url in self._names(alive):
            matched[url] = len(hashes)
        return matched

    def insert(self, url: str, hashes: list[int]) -> None:
        """Record that `url` now holds these blocks (most recently used), evicting its oldest."""
        bit = self._bit(url)
        lru = self._lru.setdefault(url, OrderedDict())
        owners = self._owners
        # Deepest block first, so a prompt's root blocks are the most recently used and the
        # LRU evicts prefixes from their tails: a block is useless once one before it is gone.
        # Held blocks leave and every block is appended again in that order (moving the held
        # ones first would leave the new tail blocks newer than the root).
        hashes = hashes[::-1]
        # Comprehensions and C-level maps instead of a Python loop: this runs on every decision.
        held = [block for block in hashes if block in lru]
        deque(map(lru.pop, held), maxlen=0)
        if len(held) < len(hashes):
            fresh = [block for block in hashes if block not in owners or not owners[block] & bit]
            owners.update({block: owners.get(block, 0) | bit for block in fresh})
        lru.update(dict.fromkeys(hashes))
        self._evict(url)

    def capacity(self, url: str) -> int:
        return self._capacity.get(url, self.default_capacity)

    def set_capacity(self, url: str, capacity: int) -> None:
        self._capacity[url] = max(1, capacity)
        self._evict(url)

    def size(self, url: str) -> int:
        return len(self._lru.get(url, ()))

    def _evict(self, url: str) -> None:
        lru = self._lru.get(url)
        if lru is None:
            return
        limit = self.capacity(url)
        keep = ~self._bits[url]
        owners = self._owners
        while len(lru) > limit:
            block, _ = lru.popitem(last=False)
            remaining = owners[block] & keep
            if remaining:
                owners[block] = remaining
            else:
                del owners[block]
