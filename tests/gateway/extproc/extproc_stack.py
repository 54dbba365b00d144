"""A real Envoy, real pickers and small model servers, all on 127.0.0.x, all stopped after."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from extproc_backend import Backend
from tests.conftest import free_port

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.extproc.bootstrap import PickerAddress, envoy_bootstrap
from tokenway.gateway.extproc.envoy import EnvoyProcess
from tokenway.gateway.extproc.server import EppServer, start_epp
from tokenway.gateway.gateway import Gateway


def platform(
    backends: Sequence[Backend], models: list[dict[str, Any]] | None = None, **sections: Any
) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "gateway": {"metricsInterval": "50ms", "accessLog": False},
            "pools": [
                {
                    "name": "pool",
                    "endpoints": [b.url for b in backends],
                    # A busy test machine can delay scrapes past the 200 ms default, which
                    # would make admission queue requests for a pool it thinks saturated.
                    "saturation": {"staleAfter": "2s"},
                }
            ],
            "models": models or [{"name": "m", "pool": "pool"}],
            **sections,
        }
    )


@asynccontextmanager
async def running_backends(addresses: Sequence[tuple[str, int]]) -> AsyncIterator[list[Backend]]:
    backends = [Backend(host, port) for host, port in addresses]
    try:
        for backend in backends:
            await backend.start()
        yield backends
    finally:
        for backend in backends:
            await backend.stop()


@dataclass(slots=True)
class Stack:
    gateways: list[Gateway]
    pickers: list[EppServer]
    envoy: EnvoyProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait for state owned by another process or task (Envoy, a scraper, a load generator)."""
    async with asyncio.timeout(20):
        while not predicate():  # noqa: ASYNC110 (nothing to wait on but the state itself)
            await asyncio.sleep(0.01)


def _scraped(gateway: Gateway) -> bool:
    state = gateway.pipeline.state
    return all(
        s.metrics_age is not None for pool in state.pools for s in state.registry.snapshots(pool)
    )


@asynccontextmanager
async def running_stack(config: PlatformConfig, replicas: int = 1) -> AsyncIterator[Stack]:
    """`replicas` pickers (each its own Gateway) behind one Envoy."""
    gateways = [Gateway(config, rng=random.Random(7 + i)) for i in range(replicas)]
    pickers: list[EppServer] = []
    envoy = None
    try:
        for gateway in gateways:
            await gateway.start()
            await eventually(lambda gateway=gateway: _scraped(gateway))
            pickers.append(await start_epp(gateway.pipeline, ("127.0.0.1", 0), ("127.0.0.1", 0)))
        port = free_port()
        bootstrap = envoy_bootstrap(
            config,
            listen=("127.0.0.1", port),
            admin_port=0,
            pickers=[PickerAddress("127.0.0.1", p.port, p.health_port) for p in pickers],
        )
        envoy = await EnvoyProcess.start(bootstrap)
        yield Stack(gateways, pickers, envoy, port)
    finally:
        if envoy is not None:
            await envoy.stop()
        for picker in pickers:
            await picker.stop(grace=0)
        for gateway in gateways:
            await gateway.stop()


def chat(model: str = "m", content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(
        f"{url}/v1/chat/completions",
        data=io.BytesIO(data),
        headers={"content-type": "application/json", **headers},
    ) as response:
        return response.status, dict(response.headers), await response.read()
