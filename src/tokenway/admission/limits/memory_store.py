"""Counters in this process's memory: exact for one replica, and the store tests can inspect."""

from __future__ import annotations

from collections.abc import Sequence

from tokenway.admission.limits.store import CounterOp, Delta, SlotOp, Verdict

SWEEP_INTERVAL_S = 60.0


class MemoryStore:
    __slots__ = ("_counters", "_next_sweep", "_slots")

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, int]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._next_sweep = 0.0

    async def reserve(
        self, counters: Sequence[CounterOp], slots: Sequence[SlotOp], holder: str, now: float
    ) -> Verdict:
        if now >= self._next_sweep:
            self._sweep(now)
        values = []
        for index, op in enumerate(counters):
            value = self._value(op.key, now)
            if value + op.charge > op.limit:
                return Verdict(False, (*values, value), index)
            values.append(value)
        for index, op in enumerate(slots):
            held = self._held(op.key, now)
            if len(held) + 1 > op.limit:
                return Verdict(False, (*values, len(held)), len(counters) + index)
            values.append(len(held))
        after = []
        for op in counters:
            value = self._value(op.key, now) + op.charge
            self._counters[op.key] = (value, op.expire_at)
            after.append(value)
        for op in slots:
            held = self._slots.setdefault(op.key, {})
            held[holder] = op.lease_until
            after.append(len(held))
        return Verdict(True, tuple(after))

    async def settle(self, deltas: Sequence[Delta], slot_keys: Sequence[str], holder: str) -> None:
        for d in deltas:
            value = self._counters.get(d.key, (0, d.expire_at))[0]
            self._counters[d.key] = (value + d.delta, d.expire_at)
        for key in slot_keys:
            held = self._slots.get(key)
            if held is not None:
                held.pop(holder, None)
                if not held:
                    del self._slots[key]

    async def read(
        self, counter_keys: Sequence[str], slot_keys: Sequence[str], now: float
    ) -> tuple[int, ...]:
        return tuple(self._value(k, now) for k in counter_keys) + tuple(
            len(self._held(k, now)) for k in slot_keys
        )

    async def close(self) -> None:
        return None

    def _sweep(self, now: float) -> None:
        """Drop counters of past windows and slots whose leases all ended, so memory stays
        bounded by what is live."""
        for key in [k for k, (_, expire_at) in self._counters.items() if expire_at <= now]:
            del self._counters[key]
        for key in list(self._slots):
            if not self._held(key, now):
                del self._slots[key]
        self._next_sweep = now + SWEEP_INTERVAL_S

    def _value(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counters[key]
            return 0
        return entry[0]

    def _held(self, key: str, now: float) -> dict[str, float]:
        held = self._slots.get(key, {})
        for holder in [h for h, until in held.items() if until <= now]:
            del held[holder]
        return held
