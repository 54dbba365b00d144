"""Runs an engine core against the event loop's clock: the stepping loop of a live replica.

The loop sleeps until each planned step ends, applies it and wakes the requests that got
tokens. Step boundaries follow the model's timeline (a late wake-up does not delay the next
step's planned end), and the last millisecond of each wait is spent yielding to the event
loop, because its timers round up to whole milliseconds. With a zero-time profile the loop
runs each request to the end of its answer in one plan and yields to the server in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from tokenway.sim.engine import EngineCore
from tokenway.sim.request import SimRequest

_PRECISE = 0.001
"""The tail of a wait slept exactly instead of through the loop's millisecond timers."""
_CONTINUOUS = 0.005
"""A step that would start this soon after the previous one's planned end continues its timeline."""


class Sink:
    """Where a request's handler waits for its next tokens.

    A handler may set `push`: called from the stepping loop on new tokens, it writes them
    itself and returns True, or returns False when the handler has to wake (finished,
    client gone).
    """

    __slots__ = ("_waiter", "push")

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self.push: Callable[[], bool] | None = None

    def notify(self) -> None:
        push = self.push
        if push is not None and push():
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class RealtimeEngine:
    def __init__(self, engine: EngineCore, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock
        self._sinks: dict[str, Sink] = {}
        self._wake = asyncio.Event()
        self._last_end = -1.0
        self.timings: deque[tuple[float, float]] = deque(maxlen=200_000)
        """(planned duration, lateness of the wake-up) of recent steps, in seconds."""

    def submit(self, req: SimRequest) -> Sink:
        sink = Sink()
        self._sinks[req.request_id] = sink
        self.engine.add_request(req, self.clock())
        self._wake.set()
        return sink

    def abort(self, request_id: str) -> None:
        self._sinks.pop(request_id, None)
        self.engine.abort(request_id)

    def done(self, request_id: str) -> None:
        self._sinks.pop(request_id, None)

    async def run(self) -> None:
        engine = self.engine
        instant = engine.step_time.instant
        while True:
            if not engine.has_work:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self.clock()
            if 0 <= now - self._last_end < _CONTINUOUS:
                now = self._last_end
            plan = engine.schedule(now, max_steps=1 << 30 if instant else 1)
            if plan is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if plan.duration > 0:
                await self._sleep_until(plan.end)
                self.timings.append((plan.duration, self.clock() - plan.end))
            self._last_end = plan.end
            out = engine.apply(plan)
            sinks = self._sinks
            for req in engine.running:
                sink = sinks.get(req.request_id)
                if sink is not None:
                    sink.notify()
            for req in out.finished:
                sink = sinks.get(req.request_id)
                if sink is not None:
                    sink.notify()
            if plan.duration <= 0:
                await asyncio.sleep(0)

    async def _sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.clock()
        if remaining > _PRECISE:
            await asyncio.sleep(remaining - _PRECISE)
        # Yield rather than block for the last stretch: other replicas on this loop may
        # have steps ending in it too.
        while self.clock() < deadline:  # noqa: ASYNC110 - no event marks a moment in time
            await asyncio.sleep(0)
