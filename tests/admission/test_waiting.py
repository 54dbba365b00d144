from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from tokenway.admission.factory import build_admission
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot
from tokenway.gateway.context import InboundRequest, RequestContext, Route
from tokenway.gateway.errors import GatewayError


def snaps(waiting: int) -> list[EndpointSnapshot]:
    return [
        EndpointSnapshot(
            url="http://10.0.0.1:8000",
            pool="p",
            metrics=EndpointMetrics(waiting=waiting),
            metrics_age=0.01,
        )
    ]


def ctx(request_id: str, priority: int = 0, flow: str = "t") -> RequestContext:
    return RequestContext(
        request_id=request_id,
        operation="chat",
        inbound=InboundRequest("POST", "/v1/chat/completions", {}, b"{}"),
        body={},
        received_at=0.0,
        model="m",
        fairness_id=flow,
        route=Route("m", "p", "m", None, priority),
    )


class Fleet:
    """The pool's current snapshots, as the gateway's data layer would hand them out."""

    def __init__(self, waiting: int) -> None:
        self.current = snaps(waiting)

    def __call__(self) -> Sequence[EndpointSnapshot]:
        return self.current


POOL = PoolSpec.model_validate({"name": "p", "flowControl": {"queueTtl": "300ms"}})


async def test_idle_pool_admits_and_saturated_pool_sheds_sheddable() -> None:
    loop = asyncio.get_running_loop()
    admission = build_admission(POOL, loop.time, Fleet(0))
    ticket = await admission.admit(ctx("a", priority=-1), snaps(0))
    ticket.release()
    with pytest.raises(GatewayError) as info:
        await admission.admit(ctx("b", priority=-1), snaps(9))
    assert info.value.status == 429
    assert info.value.code == "pool_saturated"


async def test_queued_request_dispatches_when_the_pool_drains() -> None:
    loop = asyncio.get_running_loop()
    fleet = Fleet(9)
    admission = build_admission(POOL, loop.time, fleet)
    waiter = asyncio.create_task(admission.admit(ctx("q"), fleet()))
    await asyncio.sleep(0.12)
    assert not waiter.done()
    fleet.current = snaps(0)
    ticket = await asyncio.wait_for(waiter, 1.0)
    ticket.release()
    await admission.aclose()


async def test_queued_request_times_out_with_503() -> None:
    loop = asyncio.get_running_loop()
    admission = build_admission(POOL, loop.time, Fleet(9))
    with pytest.raises(GatewayError) as info:
        await asyncio.wait_for(admission.admit(ctx("q"), snaps(9)), 2.0)
    assert info.value.status == 503
    assert info.value.code == "queue_timeout"
    await admission.aclose()


async def test_cancelled_waiter_leaves_the_queue() -> None:
    loop = asyncio.get_running_loop()
    admission = build_admission(POOL, loop.time, Fleet(9))
    waiter = asyncio.create_task(admission.admit(ctx("gone"), snaps(9)))
    await asyncio.sleep(0.01)
    assert len(admission.dispatcher.queues) == 1
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    assert len(admission.dispatcher.queues) == 0
    await admission.aclose()


async def test_two_queued_requests_with_one_request_id_both_finish() -> None:
    loop = asyncio.get_running_loop()
    fleet = Fleet(9)
    admission = build_admission(POOL, loop.time, fleet)
    # x-request-id comes from the client: a repeated one must not orphan the first waiter.
    first = asyncio.create_task(admission.admit(ctx("same"), fleet()))
    second = asyncio.create_task(admission.admit(ctx("same"), fleet()))
    await asyncio.sleep(0.1)
    fleet.current = snaps(0)
    for waiter in (first, second):
        (await asyncio.wait_for(waiter, 1.0)).release()
    await admission.aclose()
