"""The gateway's `Admission` stage: the pure `Dispatcher` plus asyncio waiting for queued requests.

Queued requests wait on a future. One pump task runs while anything is queued: every
`poll_interval` (the reference metrics refresh, 50 ms), or sooner when a ticket is released,
it asks `snapshots()` for fresh endpoint snapshots (or reuses the last ones `admit` saw),
dispatches what the pool has room for and fails what outlived its TTL with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence

from tokenway.admission.dispatch import Dispatcher, PumpResult, Verdict
from tokenway.admission.shedding import shed_error
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.context import RequestContext
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.stages import AdmissionTicket


class _Ticket:
    def __init__(self, wake: asyncio.Event) -> None:
        self._wake = wake
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._wake.set()


def _queue_full_error() -> GatewayError:
    return GatewayError(
        429,
        "Too many requests are queued for this model at this priority; retry later.",
        code="queue_full",
        headers={"retry-after": "1"},
    )


def _ttl_error(ttl: float) -> GatewayError:
    return GatewayError(
        503,
        f"The request waited {ttl:g}s in the queue for a saturated model pool; retry later.",
        code="queue_timeout",
    )


class FlowControlAdmission:
    """Implements `tokenway.gateway.stages.Admission` for one pool."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        clock: Callable[[], float],
        snapshots: Callable[[], Sequence[EndpointSnapshot]] | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self.dispatcher = dispatcher
        self._clock = clock
        self._snapshots = snapshots
        self._poll = poll_interval
        self._last: Sequence[EndpointSnapshot] = ()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        # Queue entries are keyed by this process, not by x-request-id: clients choose that
        # one, and two waiters under one key would leave the first never woken.
        self._keys = itertools.count()
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None

    async def admit(
        self, ctx: RequestContext, endpoints: Sequence[EndpointSnapshot]
    ) -> AdmissionTicket:
        self._last = endpoints
        priority = ctx.route.priority if ctx.route is not None else 0
        key = f"{next(self._keys)}:{ctx.request_id}"
        verdict = self.dispatcher.arrive(key, priority, ctx.fairness_id, endpoints, self._clock())
        if verdict is Verdict.SHED:
            raise shed_error()
        if verdict is Verdict.QUEUE_FULL:
            raise _queue_full_error()
        if verdict is Verdict.QUEUED:
            await self._wait(key)
        return _Ticket(self._wake)

    async def _wait(self, key: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.create_task(self._pump_loop())
        try:
            await future
        except asyncio.CancelledError:
            self.dispatcher.forget(key)
            raise
        finally:
            self._waiters.pop(key, None)

    async def _pump_loop(self) -> None:
        while self._waiters:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            endpoints = self._snapshots() if self._snapshots is not None else self._last
            self._settle(self.dispatcher.pump(endpoints, self._clock()))

    def _settle(self, result: PumpResult) -> None:
        for item in result.dispatched:
            future = self._waiters.get(item.key)
            if future is not None and not future.done():
                future.set_result(None)
        refusals = (
            (result.expired, lambda: _ttl_error(self.dispatcher.queues.ttl)),
            (result.shed, shed_error),
            (result.evicted, _queue_full_error),
        )
        for items, error in refusals:
            for item in items:
                future = self._waiters.get(item.key)
                if future is not None and not future.done():
                    future.set_exception(error())

    async def aclose(self) -> None:
        """Stop the pump task (on shutdown); queued requests are left to their callers."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
