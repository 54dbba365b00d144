"""Per-request KV bookkeeping over the block pool: prefix lookup, slot allocation, caching.

Block hashes chain like vLLM's, so a block matches only when its whole prefix and adapter
match; only full blocks are hashed. The chain is folded with xor over position-salted block
hashes, hash((index, block bytes)), starting from the adapter's hash: every step is then a C
call (slice, tuple hash, xor) instead of a Python iteration per block, and two different
prefixes still meet only by a 64-bit hash collision, as with nested hashing.
"""

from __future__ import annotations

from itertools import accumulate, islice
from operator import xor

from tokenway.sim.block_pool import BlockPool
from tokenway.sim.request import SimRequest
from tokenway.sim.tokenizer import TOKEN_BYTES


class KVCacheManager:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.pool = BlockPool(num_blocks)
        self.block_size = block_size
        self._block_bytes = block_size * TOKEN_BYTES

    def _hashes(self, req: SimRequest, n: int) -> list[int]:
        """The first n block hashes of the request, extending its memo as needed."""
        hashes = req.block_hashes
        have = len(hashes)
        if have < n:
            tokens = bytes(req.tokens)
            size = self._block_bytes
            starts = range(have * size, n * size, size)
            blocks = map(
                tokens.__getitem__,
                map(slice, starts, range(starts.start + size, n * size + 1, size)),
            )
            salted = map(hash, zip(range(have, n), blocks, strict=True))
            parent = hashes[-1] if hashes else hash(req.lora)
            hashes.extend(islice(accumulate(salted, xor, initial=parent), 1, None))
        return hashes

    def computed_prefix(self, req: SimRequest) -> list[int]:
        """Cached blocks matching the request's leading full blocks (at least one token stays
        to compute, as in vLLM, so the last token's logits are produced)."""
        n = (req.num_tokens - 1) // self.block_size
        hits: list[int] = []
        lookup = self.pool.lookup
        for block_hash in self._hashes(req, n)[:n]:
            block = lookup(block_hash)
            if block is None:
                break
            hits.append(block)
        return hits

    def blocks_needed(self, req: SimRequest, num_new: int, num_hits: int = 0) -> int:
        total = req.num_computed + num_hits * self.block_size + num_new
        return -(-total // self.block_size) - len(req.blocks) - num_hits

    def allocate(self, req: SimRequest, num_new: int, hits: list[int] | None = None) -> bool:
        """Give the request room for num_new more tokens (after any prefix hits); False if full."""
        pool = self.pool
        num_hits = len(hits) if hits else 0
        need = self.blocks_needed(req, num_new, num_hits)
        reviving = sum(1 for b in hits if pool.is_free(b)) if hits else 0
        if need + reviving > pool.num_free:
            return False
        if hits:
            pool.touch(hits)
            req.blocks.extend(hits)
            req.num_cached_blocks = len(req.blocks)
        if need > 0:
            new = pool.allocate(need)
            assert new is not None
            req.blocks.extend(new)
        return True

    def cache_full_blocks(self, req: SimRequest) -> None:
        """Register blocks that became full of computed tokens."""
        full = min(req.num_computed // self.block_size, len(req.blocks))
        if full <= req.num_cached_blocks:
            return
        start = req.num_cached_blocks
        self.pool.cache(req.blocks[start:full], self._hashes(req, full)[start:full])
        req.num_cached_blocks = full

    def free(self, req: SimRequest) -> None:
        self.pool.free(req.blocks[::-1])
        req.blocks = []
        req.num_cached_blocks = 0
