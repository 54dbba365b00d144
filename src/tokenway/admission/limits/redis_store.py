"""Counters in Redis, shared by every gateway replica; each operation is one atomic Lua script.

Reserve checks every counter and slot and takes them all in one script, so replicas cannot
interleave between check and charge. A Redis that cannot be reached or does not answer within
the timeout raises StoreUnavailable; the limiter decides what that means (fail-open or -closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

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

# Numbers travel as one space-separated argument, which keeps the client's per-argument
# encoding small. ARGV: n_counters, now_ms, holder, numbers = per counter (limit, charge,
# expire_at_ms) then per slot (limit, lease_until_ms). KEYS: counters then slots.
RESERVE = """
local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local holder = ARGV[3]
local a = {}
for word in string.gmatch(ARGV[4], '%S+') do a[#a + 1] = word end
local values = {}
for i = 1, n do
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  values[#values + 1] = value
  if value + tonumber(a[i * 3 - 1]) > tonumber(a[i * 3 - 2]) then
    return {0, i - 1, unpack(values)}
  end
end
local base = n * 3
for j = n + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  local held = redis.call('ZCARD', KEYS[j])
  if held + 1 > tonumber(a[base + (j - n) * 2 - 1]) then
    values[#values + 1] = held
    return {0, j - 1, unpack(values)}
  end
end
local out = {1, -1}
for i = 1, n do
  out[#out + 1] = redis.call('INCRBY', KEYS[i], a[i * 3 - 1])
  redis.call('PEXPIREAT', KEYS[i], a[i * 3])
end
for j = n + 1, #KEYS do
  local lease = a[base + (j - n) * 2]
  redis.call('ZADD', KEYS[j], lease, holder)
  redis.call('PEXPIREAT', KEYS[j], lease)
  out[#out + 1] = redis.call('ZCARD', KEYS[j])
end
return out
"""

# ARGV: n_counters, holder, numbers = per counter (delta, expire_at_ms). KEYS: counters, slots.
# An expiry in the past deletes the key: a window that has ended needs no correction.
SETTLE = """
local n = tonumber(ARGV[1])
local a = {}
for word in string.gmatch(ARGV[3], '%S+') do a[#a + 1] = word end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], a[i * 2 - 1])
  redis.call('PEXPIREAT', KEYS[i], a[i * 2])
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
    __slots__ = ("_client", "_connections", "_read", "_reserve", "_settle", "_timeout")

    def __init__(self, url: str, timeout: float) -> None:
        # No retries: a failed call is answered by the fail-open/fail-closed policy at once.
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        # Bounds the pool's connections; cheaper per call than a blocking pool's condition.
        self._connections = asyncio.Semaphore(MAX_CONNECTIONS)
        self._timeout = timeout
        self._reserve = self._client.register_script(RESERVE)
        self._settle = self._client.register_script(SETTLE)
        self._read = self._client.register_script(READ)

    async def reserve(
        self, counters: Sequence[CounterOp], slots: Sequence[SlotOp], holder: str, now: float
    ) -> Verdict:
        numbers = [f"{op.limit} {op.charge} {op.expire_at * 1000}" for op in counters]
        numbers += [f"{slot.limit} {int(slot.lease_until * 1000)}" for slot in slots]
        args = [len(counters), int(now * 1000), holder, " ".join(numbers)]
        keys = [op.key for op in counters] + [slot.key for slot in slots]
        result = await self._call(lambda: self._reserve(keys=keys, args=args))
        admitted, blocked, *values = (int(v) for v in result)
        return Verdict(bool(admitted), tuple(values), None if admitted else blocked)

    async def settle(self, deltas: Sequence[Delta], slot_keys: Sequence[str], holder: str) -> None:
        if not deltas and not slot_keys:
            return
        keys = [d.key for d in deltas] + list(slot_keys)
        numbers = " ".join(f"{d.delta} {d.expire_at * 1000}" for d in deltas)
        args = [len(deltas), holder, numbers]
        await self._call(lambda: self._settle(keys=keys, args=args))

    async def read(
        self, counter_keys: Sequence[str], slot_keys: Sequence[str], now: float
    ) -> tuple[int, ...]:
        keys = list(counter_keys) + list(slot_keys)
        if not keys:
            return ()
        args = [len(counter_keys), int(now * 1000)]
        result = await self._call(lambda: self._read(keys=keys, args=args))
        return tuple(int(v) for v in result)

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            async with asyncio.timeout(self._timeout), self._connections:
                return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None
