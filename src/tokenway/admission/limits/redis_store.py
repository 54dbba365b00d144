"""Counters in Redis, shared by every gateway replica; each operation is one atomic Lua script.

Reserve checks every counter and slot and takes them all in one script, so replicas cannot
interleave between check and charge. A Redis that cannot be reached or does not answer within
the timeout raises StoreUnavailable; the limiter decides what that means (fail-open or -closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tokenway.admission.limits.store import (
    CounterOp,
    Delta,
    SlotOp,
    StoreUnavailable,
    Verdict,
)

MAX_CONNECTIONS = 32
"""Per replica: under bursts, requests wait briefly for a connection instead of opening hundreds."""

# ARGV: n_counters, now_ms, holder, then per counter (limit, charge, expire_at_ms),
# then per slot (limit, lease_until_ms). KEYS: counters then slots.
RESERVE = """
local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local holder = ARGV[3]
local values = {}
for i = 1, n do
  local limit = tonumber(ARGV[1 + i * 3])
  local charge = tonumber(ARGV[2 + i * 3])
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  if value + charge > limit then
    values[#values + 1] = value
    return {0, i - 1, unpack(values)}
  end
  values[#values + 1] = value
end
local base = 3 + n * 3
for j = n + 1, #KEYS do
  local limit = tonumber(ARGV[base + (j - n - 1) * 2 + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  local held = redis.call('ZCARD', KEYS[j])
  if held + 1 > limit then
    values[#values + 1] = held
    return {0, j - 1, unpack(values)}
  end
end
local out = {1, -1}
for i = 1, n do
  out[#out + 1] = redis.call('INCRBY', KEYS[i], ARGV[2 + i * 3])
  redis.call('PEXPIREAT', KEYS[i], ARGV[3 + i * 3])
end
for j = n + 1, #KEYS do
  local lease = ARGV[base + (j - n - 1) * 2 + 2]
  redis.call('ZADD', KEYS[j], lease, holder)
  redis.call('PEXPIREAT', KEYS[j], lease)
  out[#out + 1] = redis.call('ZCARD', KEYS[j])
end
return out
"""

# ARGV: n_counters, holder, then per counter (delta, expire_at_ms). KEYS: counters then slots.
# An expiry in the past deletes the key: a window that has ended needs no correction.
SETTLE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[1 + i * 2])
  redis.call('PEXPIREAT', KEYS[i], ARGV[2 + i * 2])
end
for j = n + 1, #KEYS do
  redis.call('ZREM', KEYS[j], ARGV[2])
end
return 1
"""

# ARGV: n_counters, now_ms. KEYS: counters then slots.
READ = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
for j = n + 1, #KEYS do
  out[#out + 1] = redis.call('ZCOUNT', KEYS[j], '(' .. ARGV[2], '+inf')
end
return out
"""


class RedisStore:
    __slots__ = ("_client", "_read", "_reserve", "_settle", "_timeout")

    def __init__(self, url: str, timeout: float) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        # No retries: a failed call is answered by the fail-open/fail-closed policy at once.
        self._client = aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._timeout = timeout
        self._reserve = self._client.register_script(RESERVE)
        self._settle = self._client.register_script(SETTLE)
        self._read = self._client.register_script(READ)

    async def reserve(
        self, counters: Sequence[CounterOp], slots: Sequence[SlotOp], holder: str, now: float
    ) -> Verdict:
        args: list[int | str] = [len(counters), int(now * 1000), holder]
        for op in counters:
            args += [op.limit, op.charge, op.expire_at * 1000]
        for slot in slots:
            args += [slot.limit, int(slot.lease_until * 1000)]
        keys = [op.key for op in counters] + [slot.key for slot in slots]
        result = await self._call(self._reserve(keys=keys, args=args))
        admitted, blocked, *values = (int(v) for v in result)
        return Verdict(bool(admitted), tuple(values), None if admitted else blocked)

    async def settle(self, deltas: Sequence[Delta], slot_keys: Sequence[str], holder: str) -> None:
        if not deltas and not slot_keys:
            return
        keys = [d.key for d in deltas] + list(slot_keys)
        args: list[int | str] = [len(deltas), holder]
        for d in deltas:
            args += [d.delta, d.expire_at * 1000]
        await self._call(self._settle(keys=keys, args=args))

    async def read(
        self, counter_keys: Sequence[str], slot_keys: Sequence[str], now: float
    ) -> tuple[int, ...]:
        keys = list(counter_keys) + list(slot_keys)
        if not keys:
            return ()
        result = await self._call(self._read(keys=keys, args=[len(counter_keys), int(now * 1000)]))
        return tuple(int(v) for v in result)

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)

    async def _call(self, call: object) -> list[object]:
        try:
            async with asyncio.timeout(self._timeout):
                return await call  # type: ignore[misc, no-any-return]
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None
