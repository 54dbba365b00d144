"""Builds a pool's admission stage (saturation, shedding, flow control) from its settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokenway.admission.dispatch import Dispatcher
from tokenway.admission.flow_control import FlowQueues
from tokenway.admission.saturation import SaturationDetector
from tokenway.admission.waiting import FlowControlAdmission
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.endpoint import EndpointSnapshot


def build_dispatcher(pool: PoolSpec) -> Dispatcher:
    """The pure admission state for `pool`, for callers that drive time themselves (simulator)."""
    flow = pool.flow_control
    return Dispatcher(
        SaturationDetector(pool.saturation),
        FlowQueues(flow.max_queued_per_band, flow.queue_ttl),
        queueing=flow.enabled,
    )


def build_admission(
    pool: PoolSpec,
    clock: Callable[[], float],
    snapshots: Callable[[], Sequence[EndpointSnapshot]] | None = None,
) -> FlowControlAdmission:
    """The gateway's `Admission` stage for `pool`.

    `clock` is the clock the endpoint snapshots' ages are measured with (TTL deadlines use it);
    `snapshots` returns the pool's current endpoint snapshots, so queued requests see fresh
    metrics; without it they are re-checked against the last snapshots `admit` was given.
    It may be built outside a running loop but must then be used from one event loop only.
    """
    return FlowControlAdmission(build_dispatcher(pool), clock, snapshots)
