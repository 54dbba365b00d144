"""Conformance-style checks with a real Envoy in front of the picker (the upstream suite, locally)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from conftest import chat, platform, post, running_backends, running_stack

from tests.conftest import free_port


async def test_requests_land_only_on_named_endpoints() -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(3)]
    async with running_backends(addresses) as backends, running_stack(platform(backends)) as stack:
        async with aiohttp.ClientSession() as session:
            semaphore = asyncio.Semaphore(10)

            async def one(i: int) -> tuple[int, dict[str, str], bytes]:
                async with semaphore:
                    return await post(session, stack.url, chat(content=f"request {i}"))

            results = await asyncio.gather(*(one(i) for i in range(100)))
    assert [status for status, _, _ in results] == [200] * 100
    received = [(b.address, r) for b in backends for r in b.received]
    assert len(received) == 100
    for address, request in received:
        assert request.destination.split(",")[0] == address
    for status, headers, body in results:
        assert json.loads(body)["choices"][0]["message"]["content"] == "hello there"
