"""A gateway and a simulated fleet, both real servers on 127.0.0.1, started per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_listener
from tokenway.sim.faults import FaultConfig
from tokenway.sim.fleet import Fleet, start_fleet

BASE = "meta-llama/Llama-3.1-8B-Instruct"


def platform(urls: Sequence[str], **gateway: Any) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "gateway": {"listen": "127.0.0.1:0", "metricsInterval": "50ms", **gateway},
            "pools": [
                {"name": "sim", "endpoints": list(urls), "scheduler": {"profile": "round-robin"}}
            ],
            "models": [
                {"name": "chat", "pool": "sim", "model": BASE},
                {"name": "sql", "pool": "sim", "adapter": "sql-lora"},
            ],
        }
    )


@dataclass
class Running:
    gateway: Gateway
    url: str
    runner: web.AppRunner


@asynccontextmanager
async def running_gateway(config: PlatformConfig) -> AsyncIterator[Running]:
    gateway = Gateway(config)
    await gateway.start()
    runner, port = await start_listener(gateway, "127.0.0.1", 0)
    try:
        yield Running(gateway, f"http://127.0.0.1:{port}", runner)
    finally:
        await runner.cleanup()
        await gateway.stop()


@asynccontextmanager
async def running_fleet(
    replicas: int, profile: str = "instant", faults: Sequence[FaultConfig] = ()
) -> AsyncIterator[Fleet]:
    fleet = await start_fleet(replicas, profile=profile, loras=("sql-lora",), faults=faults)
    try:
        yield fleet
    finally:
        await fleet.stop()


StackFactory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def stack() -> AsyncIterator[Callable[..., Any]]:
    """`async with stack(replicas, profile=..., faults=..., **gateway_settings) as (fleet, gw)`."""

    @asynccontextmanager
    async def make(
        replicas: int = 2,
        profile: str = "instant",
        faults: Sequence[FaultConfig] = (),
        extra_urls: Sequence[str] = (),
        **gateway: Any,
    ) -> AsyncIterator[tuple[Fleet, Running]]:
        async with (
            running_fleet(replicas, profile, faults) as fleet,
            running_gateway(platform([*fleet.urls, *extra_urls], **gateway)) as running,
        ):
            yield fleet, running

    yield make
