"""Flow-control queues as plain state: bounded bands by priority, fair across flows, with TTL.

Strict priority between bands (higher priority dispatches first). Within a band each flow
(fairness id: tenant or team) has a FIFO queue and flows take turns, so a tenant that floods
the gateway cannot starve another one; when a band is full, a flow with fewer entries than the
largest one takes the largest flow's newest place (that request is refused instead). Every
entry carries a deadline; expired entries are handed back to the caller to answer 503. No
clock, no I/O: the caller passes `now`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Queued:
    key: str
    priority: int
    flow: str
    enqueued_at: float
    deadline: float


class _Band:
    """One priority band: a FIFO per flow and the order in which flows get their turn."""

    def __init__(self) -> None:
        self.flows: OrderedDict[str, deque[Queued]] = OrderedDict()
        self.size = 0

    def push(self, item: Queued) -> None:
        self.flows.setdefault(item.flow, deque()).append(item)
        self.size += 1

    def pop(self) -> Queued:
        flow, items = next(iter(self.flows.items()))
        item = items.popleft()
        self.size -= 1
        del self.flows[flow]
        if items:
            self.flows[flow] = items
        return item

    def expire(self, now: float) -> list[Queued]:
        gone: list[Queued] = []
        for flow in list(self.flows):
            items = self.flows[flow]
            while items and items[0].deadline <= now:
                gone.append(items.popleft())
            if not items:
                del self.flows[flow]
        self.size -= len(gone)
        return gone

    def make_room_for(self, flow: str) -> Queued | None:
        """The newest entry of the largest flow, removed, if `flow` holds fewer places even
        after taking one; None when `flow` already has its fair share."""
        largest, items = max(self.flows.items(), key=lambda entry: len(entry[1]))
        if len(self.flows.get(flow, ())) + 1 >= len(items):
            return None
        item = items.pop()
        self.size -= 1
        if not items:
            del self.flows[largest]
        return item

    def remove(self, key: str) -> bool:
        for flow, items in self.flows.items():
            for item in items:
                if item.key == key:
                    items.remove(item)
                    self.size -= 1
                    if not items:
                        del self.flows[flow]
                    return True
        return False


class FlowQueues:
    """All queued requests of one pool."""

    def __init__(self, max_per_band: int, ttl: float) -> None:
        self.max_per_band = max_per_band
        self.ttl = ttl
        self._bands: dict[int, _Band] = {}
        self._evicted: list[Queued] = []

    def __len__(self) -> int:
        return sum(band.size for band in self._bands.values())

    def __iter__(self) -> Iterator[Queued]:
        for priority in sorted(self._bands, reverse=True):
            for items in self._bands[priority].flows.values():
                yield from items

    def push(self, key: str, priority: int, flow: str, now: float) -> Queued | None:
        """Queue a request; None when its band is full and its flow has its fair share."""
        band = self._bands.setdefault(priority, _Band())
        if band.size >= self.max_per_band:
            evicted = band.make_room_for(flow)
            if evicted is None:
                return None
            self._evicted.append(evicted)
        item = Queued(key, priority, flow, now, now + self.ttl)
        band.push(item)
        return item

    def pop(self) -> Queued | None:
        """The next request to dispatch: highest band first, flows in turn within it."""
        for priority in sorted(self._bands, reverse=True):
            band = self._bands[priority]
            if band.size:
                return band.pop()
        return None

    def expire(self, now: float) -> list[Queued]:
        """Remove and return every entry whose deadline has passed."""
        gone: list[Queued] = []
        for band in self._bands.values():
            gone.extend(band.expire(now))
        return gone

    def take_evicted(self) -> list[Queued]:
        """Entries that lost their place to a fairer flow since the last call."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def take_bands(self, priorities: Callable[[int], bool]) -> list[Queued]:
        """Remove and return every entry of the bands whose priority matches."""
        taken: list[Queued] = []
        for priority in [p for p in self._bands if priorities(p)]:
            band = self._bands.pop(priority)
            for items in band.flows.values():
                taken.extend(items)
        return taken

    def remove(self, key: str) -> bool:
        """Forget a request (its client went away)."""
        return any(band.remove(key) for band in self._bands.values())
