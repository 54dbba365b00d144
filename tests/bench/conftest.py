"""Real targets for the client tests: the vLLM simulator, embedded on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from tokenway.sim.faults import FaultConfig
from tokenway.sim.fleet import Fleet, start_fleet


@pytest.fixture
async def instant() -> AsyncIterator[str]:
    """One replica that answers as fast as it can."""
    fleet = await start_fleet(1, profile="instant")
    yield fleet.urls[0]
    await fleet.stop()


@pytest.fixture
async def h100() -> AsyncIterator[str]:
    """One replica with Llama-3.1-8B-on-H100 timing: real TTFT and inter-token gaps."""
    fleet = await start_fleet(1, profile="h100-8b")
    yield fleet.urls[0]
    await fleet.stop()


async def faulty(faults: FaultConfig) -> Fleet:
    return await start_fleet(1, profile="instant", faults=[faults])


@pytest.fixture
def threaded_sim() -> Iterator[str]:
    """An instant replica on its own thread's event loop, for code that runs its own loop (CLI)."""
    loop = asyncio.new_event_loop()
    fleet = loop.run_until_complete(start_fleet(1, profile="instant"))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield fleet.urls[0]
    asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
