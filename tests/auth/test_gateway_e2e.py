"""Teams, access and limits through the standalone gateway, with the OpenAI SDK as the client.

The gateway here builds its stages with the auth and limits factories, against the simulated
fleet, both real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from prometheus_client import CollectorRegistry
from tests.gateway.conftest import BASE, Running, running_fleet

from tokenway.admission.limits.factory import build_limiter
from tokenway.admission.limits.limiter import Limiter
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.auth.factory import build_authenticator, build_authorizer
from tokenway.auth.metrics import AuthenticationMetrics, AuthorizationMetrics
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_listener
from tokenway.gateway.state import Stages

SEARCH_KEY, ADS_KEY = generate_key(), generate_key()


class TeamGateway(Gateway):
    def _build_stages(self, config: PlatformConfig) -> Stages:
        self.auth_registry = CollectorRegistry()
        return Stages(
            authenticator=build_authenticator(config, AuthenticationMetrics(self.auth_registry)),
            authorizer=build_authorizer(config, AuthorizationMetrics(self.auth_registry)),
            limiter=build_limiter(config, time.time, UsageMetrics(self.auth_registry)),
        )


def platform(urls: list[str], limits: list[dict[str, Any]]) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
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
async def gateway(
    limits: list[dict[str, Any]], profile: str = "instant"
) -> AsyncIterator[tuple[Running, Limiter]]:
    async with running_fleet(1, profile) as fleet:
        gw = TeamGateway(platform(list(fleet.urls), limits))
        await gw.start()
        runner, port = await start_listener(gw, "127.0.0.1", 0)
        limiter = gw.stages.limiter
        assert isinstance(limiter, Limiter)
        try:
            yield Running(gw, f"http://127.0.0.1:{port}", runner), limiter
        finally:
            await runner.cleanup()
            await gw.stop()
            await limiter.close()


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
