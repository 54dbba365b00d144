"""Payloads through a real Envoy and the picker: streams, large bodies, bad requests."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest
from extproc_stack import chat, platform, post, running_backends, running_stack
from tests.conftest import free_port

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.extproc.dataplane import start_envoy_dataplane
from tokenway.gateway.gateway import Gateway
from tokenway.sim.fleet import start_fleet
from tokenway.sim.profiles import DEFAULT_MODEL

MODES = [
    {"failureMode": "FailOpen", "requestBodyMode": "BUFFERED"},
    {"failureMode": "FailClose", "requestBodyMode": "FULL_DUPLEX_STREAMED"},
]


@pytest.mark.parametrize("picker", MODES, ids=["buffered", "full-duplex"])
async def test_payloads_through_envoy(picker: dict[str, str]) -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(2)]
    config = None
    async with running_backends(addresses) as backends:
        config = platform(
            backends,
            gateway={"maxRequestBytes": "1Mi", "accessLog": False, "metricsInterval": "50ms"},
            picker=picker,
        )
        async with running_stack(config) as stack:
            client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key="unused")
            try:
                # Streaming, without and with usage asked for by the client.
                stream = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                chunks = [chunk async for chunk in stream]
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                assert text == "one two three four"
                assert all(c.usage is None for c in chunks)
                stream = await client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = [chunk async for chunk in stream]
                assert chunks[-1].usage is not None
                assert chunks[-1].usage.completion_tokens == 4
            finally:
                await client.close()

            async with aiohttp.ClientSession() as session:
                # A 256 KB prompt arrives whole at the endpoint the picker named.
                big = chat(content="z" * 256 * 1024)
                status, headers, _ = await post(session, stack.url, big)
                assert status == 200
                received = [r for b in backends for r in b.received if r.body_bytes > 256 * 1024]
                assert len(received) == 1
                assert received[0].destination.split(",")[0] == headers["x-served-by"]

                status, _, body = await post(session, stack.url, b"{not json")
                assert status == 400
                assert "not valid JSON" in json.loads(body)["error"]["message"]

                status, _, body = await post(session, stack.url, chat(model="unknown-model"))
                assert status == 404
                assert "unknown-model" in json.loads(body)["error"]["message"]

                status, _, _ = await post(session, stack.url, chat(content="w" * 2 * 2**20))
                assert status == 413
    tokens = {
        (s.name, s.labels.get("gen_ai_token_type")): s.value
        for metric in stack.gateways[0].metrics.registry.collect()
        for s in metric.samples
    }
    # Usage was read off the responses: 4 + 4 streamed tokens and 2 for the large request.
    assert tokens[("gen_ai_client_token_usage_sum", "output")] == 10


async def test_simulated_fleet_behind_the_envoy_dataplane() -> None:
    fleet = await start_fleet(2)
    gateway = None
    try:
        config = PlatformConfig.model_validate(
            {
                "gateway": {"accessLog": False},
                "pools": [{"name": "sim", "endpoints": fleet.urls}],
                "models": [{"name": DEFAULT_MODEL, "pool": "sim"}],
            }
        )
        gateway = Gateway(config)
        await gateway.start()
        dataplane = await start_envoy_dataplane(config, gateway, free_port())
        try:
            client = openai.AsyncOpenAI(base_url=f"{dataplane.url}/v1", api_key="unused")
            try:
                stream = await client.chat.completions.create(
                    model=DEFAULT_MODEL,
                    messages=[{"role": "user", "content": "Say something."}],
                    max_tokens=8,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = [chunk async for chunk in stream]
            finally:
                await client.close()
        finally:
            await dataplane.stop()
    finally:
        if gateway is not None:
            await gateway.stop()
        await fleet.stop()
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
