"""Teams, access and limits through the standalone gateway, with the OpenAI SDK as the client.

The gateway here builds its stages with the auth and limits factories, against the simulated
fleet, both real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
import pytest
from tests.admission.test_limits_redis import RedisServer
from tests.gateway.conftest import BASE, Running, running_fleet

from tokenway.admission.limits.limiter import Limiter
from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_listener

SEARCH_KEY, ADS_KEY = generate_key(), generate_key()


def platform(
    urls: list[str], limits: list[dict[str, Any]], store: dict[str, Any] | None = None
) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "limitsStore": store or {},
            "gateway": {"listen": "127.0.0.1:0", "metricsInterval": "50ms"},
            "pools": [{"name": "sim", "endpoints": urls, "scheduler": {"profile": "round-robin"}}],
            "models": [
                {"name": "chat", "pool": "sim", "model": BASE},
                {"name": "sql", "pool": "sim", "adapter": "sql-lora"},
            ],
            "teams": [
                {
                    "name": "search",
                    "identities": {"apiKeys": [{"sha256": hash_key(SEARCH_KEY), "label": "s"}]},
                    "models": ["chat"],
                    "limits": limits,
                },
                {
                    "name": "ads",
                    "identities": {"apiKeys": [{"sha256": hash_key(ADS_KEY), "label": "a"}]},
                    "models": ["*"],
                },
            ],
        }
    )


@asynccontextmanager
async def replica(config: PlatformConfig) -> AsyncIterator[tuple[Running, Limiter]]:
    gw = Gateway(config)
    await gw.start()
    runner, port = await start_listener(gw, "127.0.0.1", 0)
    limiter = gw.stages.limiter
    assert isinstance(limiter, Limiter)
    try:
        yield Running(gw, f"http://127.0.0.1:{port}", runner), limiter
    finally:
        await runner.cleanup()
        await gw.stop()


@asynccontextmanager
async def gateway(
    limits: list[dict[str, Any]], profile: str = "instant"
) -> AsyncIterator[tuple[Running, Limiter]]:
    async with (
        running_fleet(1, profile) as fleet,
        replica(platform(list(fleet.urls), limits)) as running,
    ):
        yield running


def sdk(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


async def used_tokens(limiter: Limiter) -> int:
    report = await limiter.usage("search", ["chat"])
    return int(report["limits"][0]["used"])  # type: ignore[index]


async def test_identity_access_and_limits_through_the_sdk() -> None:
    async with gateway([{"tokens": 200, "per": "minute"}]) as (gw, limiter):
        search, ads = sdk(gw.url, SEARCH_KEY), sdk(gw.url, ADS_KEY)
        messages = [{"role": "user", "content": "hello there"}]
        raw = await search.chat.completions.with_raw_response.create(
            model="chat", messages=messages, max_tokens=10
        )
        usage = raw.parse().usage
        assert usage is not None
        assert int(raw.headers["x-ratelimit-limit-tokens"]) == 200
        first_remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
        assert await used_tokens(limiter) == usage.total_tokens
        raw = await search.chat.completions.with_raw_response.create(
            model="chat", messages=messages, max_tokens=10
        )
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) < first_remaining
        stranger = sdk(gw.url, "tw-wrong")
        with pytest.raises(openai.AuthenticationError):
            await stranger.chat.completions.create(model="chat", messages=messages, max_tokens=5)
        with pytest.raises(openai.PermissionDeniedError):
            await search.completions.create(model="sql", prompt="select", max_tokens=5)
        assert (await ads.completions.create(model="sql", prompt="select", max_tokens=5)).usage
        with pytest.raises(openai.RateLimitError) as limited:
            await search.chat.completions.create(model="chat", messages=messages, max_tokens=500)
        assert limited.value.response.headers["retry-after"]
        assert "lower max_tokens" in limited.value.message
        for client in (search, ads, stranger):
            await client.close()


async def test_streams_are_charged_even_without_include_usage_and_when_cut() -> None:
    limits = [{"tokens": 100_000, "per": "minute", "count": "output"}]
    async with gateway(limits, "h100-8b") as (gw, lim):
        search = sdk(gw.url, SEARCH_KEY)
        messages = [{"role": "user", "content": "tell me a long story"}]
        stream = await search.chat.completions.create(
            model="chat", messages=messages, max_tokens=8, stream=True
        )
        [chunk async for chunk in stream]
        assert await used_tokens(lim) == 8
        stream = await search.chat.completions.create(
            model="chat", messages=messages, max_tokens=4000, stream=True
        )
        received = 0
        async for chunk in stream:
            received += sum(1 for choice in chunk.choices if choice.delta.content)
            if received == 3:
                break
        await stream.close()
        for _ in range(100):
            charged = await used_tokens(lim)
            if charged != 8 + 4000:
                break
            await asyncio.sleep(0.02)
        # The cut stream is charged what was generated, not its max_tokens estimate.
        assert 8 + received <= charged < 8 + 4000
        await search.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_three_gateway_replicas_share_one_limit_through_redis() -> None:
    redis_server = RedisServer()
    redis_server.start()
    limit, max_tokens = 3000, 40
    store = {"redis": redis_server.url, "timeout": "5s"}
    try:
        async with running_fleet(1) as fleet, contextlib.AsyncExitStack() as stack:
            config = platform(list(fleet.urls), [{"tokens": limit, "count": "output"}], store)
            replicas = [await stack.enter_async_context(replica(config)) for _ in range(3)]
            clients = [sdk(gw.url, SEARCH_KEY) for gw, _ in replicas]

            async def one(n: int) -> int:
                try:
                    done = await clients[n % 3].chat.completions.create(
                        model="chat",
                        messages=[{"role": "user", "content": f"q{n}"}],
                        max_tokens=max_tokens,
                    )
                except openai.RateLimitError:
                    return -1
                assert done.usage is not None
                return done.usage.completion_tokens

            results = await asyncio.gather(*(one(n) for n in range(200)))
            admitted = sum(r for r in results if r >= 0)
            assert results.count(-1) > 0
            # Bound of the issue: one request's max_tokens per replica over the limit; the
            # atomic reservation actually keeps it within the limit.
            assert admitted <= limit + 3 * max_tokens
            assert admitted <= limit
            assert await used_tokens(replicas[0][1]) == admitted
            for client in clients:
                await client.close()
    finally:
        redis_server.stop()


async def test_a_team_reads_only_its_own_usage() -> None:
    async with (
        gateway([{"tokens": 200, "per": "minute"}]) as (gw, _),
        aiohttp.ClientSession() as http,
    ):

        async def usage(team: str, key: str | None) -> tuple[int, dict[str, Any]]:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            async with http.get(f"{gw.url}/admin/usage/{team}", headers=headers) as resp:
                return resp.status, await resp.json()

        status, report = await usage("search", SEARCH_KEY)
        assert status == 200 and report["limits"][0]["limit"] == "200 total tokens/minute"
        assert (await usage("search", ADS_KEY))[0] == 403
        assert (await usage("search", None))[0] == 401
