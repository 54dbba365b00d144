"""The admission decision as a pure state machine: shed, pass, queue, dispatch, expire.

The gateway's async layer (`waiting.py`) and the virtual-time simulator drive the same
`Dispatcher`: `arrive` when a request comes in, `pump` whenever fresh endpoint snapshots are
available. Dispatch is paused while the pool is saturated. Within one pump every dispatched
request counts as one more waiting request on the pool (see `SaturationDetector`), because
the metrics that would show it arrive only with the next scrape; otherwise a single pump would
release the whole queue onto a pool that just dipped below saturation.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.admission.flow_control import FlowQueues, Queued
from tokenway.admission.saturation import SaturationDetector
from tokenway.admission.shedding import should_shed
from tokenway.datalayer.endpoint import EndpointSnapshot


class Verdict(enum.Enum):
    ADMIT = "admit"
    SHED = "shed"
    QUEUED = "queued"
    QUEUE_FULL = "queue-full"


@dataclass(frozen=True, slots=True)
class PumpResult:
    dispatched: list[Queued]
    expired: list[Queued]
    """Waited past the TTL: 503."""
    shed: list[Queued]
    """Sheddable (priority < 0) and the pool saturated: 429, as if they had just arrived."""
    evicted: list[Queued]
    """Gave their place to a flow with a smaller share of a full band: 429 queue full."""


class Dispatcher:
    """One pool's admission state: its flow-control queues and saturation detector."""

    def __init__(self, detector: SaturationDetector, queues: FlowQueues, queueing: bool) -> None:
        self.detector = detector
        self.queues = queues
        self.queueing = queueing

    def arrive(
        self,
        key: str,
        priority: int,
        flow: str,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
    ) -> Verdict:
        saturated = self.detector.pool(endpoints) >= 1.0
        if should_shed(priority, saturated):
            return Verdict.SHED
        if not self.queueing:
            return Verdict.ADMIT
        # Passing while others wait would let newcomers overtake the queue.
        if not saturated and not len(self.queues):
            return Verdict.ADMIT
        if self.queues.push(key, priority, flow, now) is None:
            return Verdict.QUEUE_FULL
        return Verdict.QUEUED

    def pump(self, endpoints: Sequence[EndpointSnapshot], now: float) -> PumpResult:
        """Expire overdue entries, then dispatch queued requests while the pool has room."""
        expired = self.queues.expire(now)
        dispatched: list[Queued] = []
        saturation = self.detector.pool(endpoints)
        saturated = saturation >= 1.0
        shed = self.queues.take_bands(lambda priority: should_shed(priority, saturated))
        step = self.detector.headroom_per_request(endpoints)
        # The epsilon keeps ten steps of 0.1 from summing to just under 1.0.
        while saturation + len(dispatched) * step < 1.0 - 1e-9:
            item = self.queues.pop()
            if item is None:
                break
            dispatched.append(item)
        return PumpResult(dispatched, expired, shed, self.queues.take_evicted())

    def forget(self, key: str) -> None:
        self.queues.remove(key)
