"""The narrow interface between limit decisions and where counters live (memory or Redis).

A reservation is all-or-nothing: either every counter has room for its charge and every slot
has a free place, and all are taken together, or nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class CounterOp:
    key: str
    limit: int
    charge: int
    expire_at: int
    """Epoch seconds."""


@dataclass(frozen=True, slots=True)
class SlotOp:
    key: str
    limit: int
    lease_until: float
    """Epoch seconds after which a slot of a vanished replica frees itself."""


@dataclass(frozen=True, slots=True)
class Delta:
    """A correction of a counter once the real usage is known (negative when over-estimated)."""

    key: str
    delta: int
    expire_at: int


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    values: tuple[int, ...]
    """Counters then slots: the value after taking them, or (rejected) up to the blocking one."""
    blocked: int | None = None
    """Index into counters then slots of the first one without room."""


class LimitStore(Protocol):
    async def reserve(
        self, counters: Sequence[CounterOp], slots: Sequence[SlotOp], holder: str, now: float
    ) -> Verdict: ...

    async def settle(self, deltas: Sequence[Delta], slot_keys: Sequence[str], holder: str) -> None:
        """Add deltas to counters (creating them until their expiry); free the holder's slots."""
        ...

    async def read(
        self, counter_keys: Sequence[str], slot_keys: Sequence[str], now: float
    ) -> tuple[int, ...]:
        """Current values, counters then slots."""
        ...

    async def close(self) -> None: ...
