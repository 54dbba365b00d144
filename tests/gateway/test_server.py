"""The standalone gateway through the official OpenAI SDK, against the simulated fleet."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import openai
import pytest
from tests.conftest import free_port

from tokenway.sim.faults import FaultConfig


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=20)


async def test_chat_and_completions_non_streaming(stack: Callable[..., Any]) -> None:
    async with stack() as (fleet, gw):
        sdk = client(gw.url)
        raw = await sdk.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=12
        )
        chat = raw.parse()
        assert chat.usage is not None and chat.usage.completion_tokens == 12
        assert chat.choices[0].message.content
        assert raw.headers["x-tokenway-endpoint"] in fleet.urls
        assert raw.headers["x-request-id"]
        done = await sdk.completions.create(model="sql", prompt="select", max_tokens=5)
        assert done.usage is not None and done.usage.completion_tokens == 5
        await sdk.close()


async def test_streaming_relays_chunks_and_hides_added_usage(stack: Callable[..., Any]) -> None:
    async with stack() as (_, gw):
        sdk = client(gw.url)
        messages = [{"role": "user", "content": "tell me"}]
        chunks = [
            c
            async for c in await sdk.chat.completions.create(
                model="chat", messages=messages, max_tokens=8, stream=True
            )
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text and all(c.usage is None for c in chunks)
        with_usage = [
            c
            async for c in await sdk.chat.completions.create(
                model="chat",
                messages=messages,
                max_tokens=8,
                stream=True,
                stream_options={"include_usage": True},
            )
        ]
        assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens == 8
        await sdk.close()
        # The gateway counted both streams' tokens, including the one whose client did not ask.
        async with aiohttp.ClientSession() as http, http.get(f"{gw.url}/metrics") as resp:
            metrics = await resp.text()
        line = next(
            m
            for m in metrics.splitlines()
            if m.startswith("gen_ai_client_token_usage_sum") and 'token_type="output"' in m
        )
        assert float(line.rsplit(" ", 1)[1]) == 16.0


async def test_models_lists_public_names(stack: Callable[..., Any]) -> None:
    async with stack() as (_, gw):
        sdk = client(gw.url)
        names = [m.id async for m in sdk.models.list()]
        assert names == ["chat", "sql"]
        await sdk.close()


async def test_openai_errors_for_bad_requests(stack: Callable[..., Any]) -> None:
    async with stack(maxRequestBytes="4Ki") as (_, gw):
        sdk = client(gw.url)
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "x"}]
            )
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.APIStatusError) as big:
            await sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x" * 8000}]
            )
        assert big.value.status_code == 413
        await sdk.close()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{gw.url}/v1/chat/completions", data=b"{oops", headers={"x-request-id": "abc"}
            ) as resp,
        ):
            assert resp.status == 400 and resp.headers["x-request-id"] == "abc"
            assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_5xx_is_retried_on_the_next_endpoint(stack: Callable[..., Any]) -> None:
    async with stack(2, faults=[FaultConfig(error_rate=1.0)]) as (fleet, gw):
        sdk = client(gw.url)
        for _ in range(6):
            raw = await sdk.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=2
            )
            assert raw.headers["x-tokenway-endpoint"] == fleet.urls[1]
        await sdk.close()


async def test_all_endpoints_failing_is_502(stack: Callable[..., Any]) -> None:
    faults = [FaultConfig(error_rate=1.0), FaultConfig(error_rate=1.0)]
    async with stack(2, faults=faults) as (_, gw):
        sdk = client(gw.url)
        with pytest.raises(openai.APIStatusError) as info:
            await sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 502
        assert info.value.response.headers["x-request-id"]
        await sdk.close()


async def test_refused_connection_falls_back(stack: Callable[..., Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with stack(1, extra_urls=[dead]) as (fleet, gw):
        sdk = client(gw.url)
        for _ in range(4):
            raw = await sdk.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=2
            )
            assert raw.headers["x-tokenway-endpoint"] == fleet.urls[0]
        await sdk.close()


async def test_slow_first_byte_times_out_with_504(stack: Callable[..., Any]) -> None:
    # Every completion is held for 5 s before reaching the engine; /metrics still answers.
    slow = FaultConfig(spike_rate=1.0, spike_seconds=5.0)
    async with stack(1, faults=[slow], timeouts={"firstByte": "300ms"}) as (_, gw):
        sdk = client(gw.url)
        with pytest.raises(openai.APIStatusError) as info:
            await sdk.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 504
        assert "did not answer in time" in info.value.message
        await sdk.close()


async def test_explain_header_shows_scores(stack: Callable[..., Any]) -> None:
    async with stack() as (_, gw), aiohttp.ClientSession() as http:
        body = {"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
        async with http.post(
            f"{gw.url}/v1/chat/completions", json=body, headers={"x-tokenway-explain": "1"}
        ) as resp:
            assert resp.status == 200
            scores = json.loads(resp.headers["x-tokenway-scores"])
            assert isinstance(scores, dict)


async def test_unknown_paths_methods_and_models_get_openai_errors(
    stack: Callable[..., Any],
) -> None:
    async with stack() as (_, gw), aiohttp.ClientSession() as http:
        for method, path, status in (
            ("POST", "/v1/nope", 404),
            ("GET", "/v1/chat/completions", 405),
            ("GET", "/v1/models/nope", 404),
        ):
            async with http.request(method, gw.url + path) as resp:
                assert resp.status == status
                assert status != 405 or "POST" in resp.headers["Allow"]
                assert set((await resp.json())["error"]) == {"message", "type", "param", "code"}
        sdk = client(gw.url)
        assert (await sdk.models.retrieve("chat")).id == "chat"
        await sdk.close()
        body = {"model": "nope", "messages": [{"role": "user", "content": "x"}]}
        async with http.post(f"{gw.url}/v1/chat/completions", json=body) as resp:
            assert resp.status == 404
            assert resp.headers["x-request-id"]  # made up by the gateway, so the client learns it
