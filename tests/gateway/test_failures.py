"""Failure behaviour of the standalone gateway: killed replicas, client disconnects, reloads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.conftest import free_port
from tests.gateway.conftest import BASE, running_fleet, running_gateway

from tokenway.config.loader import load_platform
from tokenway.config.platform import PlatformConfig
from tokenway.config.reload import ConfigWatcher
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import until_signal_or_failure


def _start_replica(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tokenway", "sim", "--port", str(port), "--profile", "h100-8b"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_healthy(url: str, deadline: float = 20.0) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(deadline / 0.1)):
            try:
                async with http.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


async def _request(http: aiohttp.ClientSession, url: str, stream: bool) -> tuple[int, str, str]:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "write a long answer"}],
        "max_tokens": 120,
        "stream": stream,
    }
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        text = await resp.text()
        return resp.status, resp.headers.get("x-tokenway-endpoint", ""), text


def _platform(urls: list[str], **extra: Any) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "gateway": {"listen": "127.0.0.1:0", "metricsInterval": "50ms"},
            "pools": [{"name": "sim", "endpoints": urls, "scheduler": {"profile": "round-robin"}}],
            "models": [{"name": "chat", "pool": "sim", "model": BASE}],
            **extra,
        }
    )


async def test_killed_replica_during_load() -> None:
    port = free_port()
    victim_url = f"http://127.0.0.1:{port}"
    victim = _start_replica(port)
    try:
        await _wait_healthy(victim_url)
        async with (
            running_fleet(2, profile="h100-8b") as fleet,
            running_gateway(_platform([*fleet.urls, victim_url])) as gw,
            aiohttp.ClientSession() as http,
        ):
            await asyncio.sleep(0.2)
            jobs = [
                asyncio.create_task(_request(http, gw.url, stream=i % 2 == 0)) for i in range(30)
            ]
            # Kill it while streams are running on it, however slow the machine is today.
            for _ in range(200):
                if await _sim_running(http, victim_url) >= 2:
                    break
                await asyncio.sleep(0.02)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            results = await asyncio.wait_for(asyncio.gather(*jobs), timeout=60)

            for i, (status, endpoint, text) in enumerate(results):
                streamed = i % 2 == 0
                assert status == 200, (status, text)
                if not streamed:
                    # Nothing had reached the client: failed attempts moved to a live replica.
                    assert endpoint in fleet.urls
                    assert json.loads(text)["usage"]["completion_tokens"] == 120
                elif endpoint == victim_url and '"error"' in text:
                    # A stream cut mid-way ends with a clean SSE error event, not a hang.
                    assert text.rstrip().splitlines()[-1].startswith('data: {"error"')
                else:
                    assert text.rstrip().endswith("data: [DONE]")

            cut = [r for i, r in enumerate(results) if i % 2 == 0 and r[1] == victim_url]
            assert cut and all('"error"' in text for _, _, text in cut)
            statuses = {s.url: s for s in gw.gateway.registry.statuses("sim")}
            assert not statuses[victim_url].routable

            after = await asyncio.gather(*(_request(http, gw.url, False) for _ in range(6)))
            assert [status for status, _, _ in after] == [200] * 6
            assert victim_url not in {endpoint for _, endpoint, _ in after}

            victim = _start_replica(port)
            await _wait_healthy(victim_url)
            for _ in range(100):
                if {s.url: s for s in gw.gateway.registry.statuses("sim")}[victim_url].routable:
                    break
                await asyncio.sleep(0.1)
            back = await asyncio.gather(*(_request(http, gw.url, False) for _ in range(9)))
            assert [status for status, _, _ in back] == [200] * 9
            assert victim_url in {endpoint for _, endpoint, _ in back}
    finally:
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)


async def _sim_running(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("vllm:num_requests_running{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no vllm:num_requests_running")


_GONE = 'tokenway_requests_total{model="chat",pool="sim",status="499"} 1.0'


def _long_answer(stream: bool) -> dict[str, Any]:
    return {
        "model": "chat",
        "messages": [{"role": "user", "content": "a long answer"}],
        "max_tokens": 4000,
        "stream": stream,
    }


async def _counted_as_gone(http: aiohttp.ClientSession, gateway_url: str) -> bool:
    """Whether the gateway settled one request as 499 (client gone), waiting a little for it."""
    for _ in range(100):
        async with http.get(f"{gateway_url}/metrics") as resp:
            if _GONE in await resp.text():
                return True
        await asyncio.sleep(0.05)
    return False


async def test_client_disconnect_cancels_upstream() -> None:
    async with (
        running_fleet(1, profile="h100-8b") as fleet,
        running_gateway(_platform(fleet.urls)) as gw,
        aiohttp.ClientSession() as http,
    ):
        resp = await http.post(f"{gw.url}/v1/chat/completions", json=_long_answer(stream=True))
        assert resp.status == 200
        await resp.content.readuntil(b"\n\n")
        assert await _sim_running(http, fleet.urls[0]) == 1
        resp.close()
        for _ in range(100):
            if await _sim_running(http, fleet.urls[0]) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _sim_running(http, fleet.urls[0]) == 0
        assert await _counted_as_gone(http, gw.url)


async def test_client_leaving_before_the_first_byte_is_settled() -> None:
    async with (
        running_fleet(1, profile="h100-8b") as fleet,
        running_gateway(_platform(fleet.urls)) as gw,
        aiohttp.ClientSession() as http,
    ):
        # A non-streamed answer sends nothing until it is complete: leave while waiting.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await http.post(f"{gw.url}/v1/chat/completions", json=_long_answer(stream=False))
        assert await _counted_as_gone(http, gw.url)
        assert [s.in_flight for s in gw.gateway.registry.snapshots("sim")] == [0]
        # Leaving says nothing about the endpoint: it is not reported to passive health.
        assert all(s.healthy for s in gw.gateway.registry.snapshots("sim"))


def _write(path: Path, config: dict[str, Any]) -> None:
    _write_text(path, yaml.safe_dump(config))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def test_hot_reload_under_load_drops_nothing(tmp_path: Path) -> None:
    async with running_fleet(2) as fleet:
        path = tmp_path / "platform.yaml"
        document: dict[str, Any] = {
            "gateway": {"listen": "127.0.0.1:0", "accessLog": False},
            "pools": [{"name": "sim", "endpoints": fleet.urls}],
            "models": [{"name": "chat", "pool": "sim", "model": BASE}],
        }
        _write(path, document)
        async with running_gateway(load_platform(path)) as gw:
            rejected: list[object] = []

            def models() -> set[str]:
                return {m.name for m in gw.gateway.config.models}

            watcher = ConfigWatcher(
                path, gw.gateway.reload, rejected.append, lambda: gw.gateway.config, interval=0.02
            )
            watcher.start()

            async def until(condition: Callable[[], bool]) -> None:
                # The watcher polls every 20 ms; a busy loop may delay it, so wait for the
                # outcome itself (bounded) instead of a fixed time.
                for _ in range(500):
                    if condition():
                        return
                    await asyncio.sleep(0.01)
                raise AssertionError("the watcher never picked the file up")

            async def churn() -> None:
                for round_ in range(6):
                    changed = json.loads(json.dumps(document))
                    name = f"extra-{round_}"
                    changed["models"].append({"name": name, "pool": "sim", "model": BASE})
                    changed["pools"][0]["scheduler"] = {
                        "profile": "least-in-flight" if round_ % 2 else "round-robin"
                    }
                    _write(path, changed)
                    await until(lambda name=name: name in models())
                    if round_ == 3:
                        # Invalid: reported, and the running configuration stays.
                        _write_text(path, "models: [ {name: broken")
                        await until(lambda: len(rejected) == 1)
                        assert name in models()

            async with aiohttp.ClientSession() as http:
                sem = asyncio.Semaphore(20)

                async def one() -> int:
                    async with sem:
                        status, _, _ = await _request(http, gw.url, stream=False)
                        return status

                statuses, _ = await asyncio.wait_for(
                    asyncio.gather(asyncio.gather(*(one() for _ in range(200))), churn()),
                    timeout=60,
                )
            await watcher.stop()
            assert statuses == [200] * 200
            assert len(rejected) == 1
            assert "extra-5" in models() and "extra-3" not in models()


async def test_a_gateway_whose_discovery_dies_stops_instead_of_serving_blind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))  # no credentials anywhere
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = PlatformConfig.model_validate(
        {
            "gateway": {"accessLog": False},
            "pools": [{"name": "p", "inferencePool": {"name": "p", "namespace": "models"}}],
            "models": [{"name": "m", "pool": "p"}],
        }
    )
    gateway = Gateway(config)
    await gateway.start()
    try:
        with pytest.raises(Exception, match=r"(?i)config|kube"):
            await asyncio.wait_for(until_signal_or_failure(gateway), 10)
    finally:
        await gateway.stop()
