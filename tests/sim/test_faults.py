"""Fault injection, observed from the outside by real clients."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenway.sim.faults import FaultConfig
from tokenway.sim.fleet import start_fleet

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _client(url: str, timeout: float = 10) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=timeout
    )


async def test_error_rate_answers_500_only_on_the_faulty_replica() -> None:
    fleet = await start_fleet(2, profile="instant", faults=[FaultConfig(error_rate=1.0)])
    try:
        async with _client(fleet.urls[0]) as bad, _client(fleet.urls[1]) as good:
            with pytest.raises(openai.InternalServerError):
                await bad.completions.create(model=MODEL, prompt="x", max_tokens=2)
            ok = await good.completions.create(model=MODEL, prompt="x", max_tokens=2)
    finally:
        await fleet.stop()
    assert ok.choices[0].text


async def test_slow_start_reports_not_ready() -> None:
    fleet = await start_fleet(1, profile="instant", faults=[FaultConfig(slow_start=3600)])
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{fleet.urls[0]}/health") as health:
                assert health.status == 503
            async with http.post(f"{fleet.urls[0]}/v1/completions", json={"prompt": "x"}) as r:
                assert r.status == 503
    finally:
        await fleet.stop()


async def test_crash_after_n_requests_drops_connections_and_refuses_new_ones() -> None:
    fleet = await start_fleet(1, profile="instant", faults=[FaultConfig(crash_after=1)])
    url = fleet.urls[0]
    try:
        async with aiohttp.ClientSession() as http:
            body = {"prompt": "x", "max_tokens": 2}
            async with http.post(f"{url}/v1/completions", json=body) as first:
                assert first.status == 200
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.post(f"{url}/v1/completions", json=body) as second:
                    await second.read()
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectionError):
                async with fresh.get(f"{url}/health") as health:
                    await health.read()
    finally:
        await fleet.stop()


async def test_hang_after_n_requests_never_answers() -> None:
    fleet = await start_fleet(1, profile="instant", faults=[FaultConfig(hang_after=1)])
    try:
        async with _client(fleet.urls[0], timeout=0.3) as client:
            await client.completions.create(model=MODEL, prompt="x", max_tokens=2)
            with pytest.raises(openai.APITimeoutError):
                await client.completions.create(model=MODEL, prompt="x", max_tokens=2)
    finally:
        await fleet.stop()


async def test_latency_spikes_show_in_time_to_first_token() -> None:
    spike = FaultConfig(spike_rate=1.0, spike_seconds=0.25)
    fleet = await start_fleet(1, profile="instant", faults=[spike])
    try:
        async with _client(fleet.urls[0]) as client, aiohttp.ClientSession() as http:
            await client.completions.create(model=MODEL, prompt="x", max_tokens=2)
            async with http.get(f"{fleet.urls[0]}/metrics") as response:
                text = await response.text()
    finally:
        await fleet.stop()
    ttft = next(
        f
        for f in text_string_to_metric_families(text)
        if f.name == "vllm:time_to_first_token_seconds"
    )
    total = next(s.value for s in ttft.samples if s.name.endswith("_sum"))
    assert total >= 0.25
