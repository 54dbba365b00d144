"""The PromQL of every rendered ScaledObject (and the dashboard) on a real Prometheus.

Prometheus (Debian package) scrapes a real gateway and a simulated vLLM fleet, both started
here; the fleet's targets carry the labels the rendered PodMonitor attaches in a cluster
(namespace, pod, tokenway_io_deployment, tokenway_io_pool).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.conftest import free_port
from tests.kube.conftest import render_input

from tokenway.config.loader import parse_platform
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_listener
from tokenway.kube.render import render
from tokenway.sim.fleet import start_fleet

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="needs the Debian prometheus package"
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _platform(urls: list[str]) -> str:
    return yaml.safe_dump(
        {
            "gateway": {"listen": "127.0.0.1:0", "metricsInterval": "50ms"},
            "pools": [{"name": "llama-8b", "endpoints": urls}],
            "models": [{"name": "chat", "pool": "llama-8b", "model": MODEL}],
            "deployments": [
                {
                    "name": "llama-8b",
                    "pool": "llama-8b",
                    "namespace": "models",
                    "model": MODEL,
                    "replicas": {"min": 0, "max": 4},
                    "autoscale": {
                        "tokensPerSecondPerReplica": 100,
                        "saturation": 0.8,
                        "scaleToZero": True,
                    },
                }
            ],
        }
    )


def _prometheus_config(fleet: list[str], gateway: str) -> dict[str, Any]:
    pods = [
        {
            "targets": [url.removeprefix("http://")],
            "labels": {
                "namespace": "models",
                "pod": f"llama-8b-{index}",
                "tokenway_io_deployment": "llama-8b",
                "tokenway_io_pool": "llama-8b",
            },
        }
        for index, url in enumerate(fleet)
    ]
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "vllm", "static_configs": pods},
            {
                "job_name": "gateway",
                "static_configs": [{"targets": [gateway.removeprefix("http://")]}],
            },
        ],
    }


async def _query(session: aiohttp.ClientSession, url: str, expr: str) -> dict[str, Any]:
    async with session.get(f"{url}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
        return body


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("scrape_configs: []\n")
    process = await asyncio.create_subprocess_exec(
        "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle", "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("prometheus did not become ready")
        yield url, config
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_scaled_object_queries_return_numbers(prometheus: tuple[str, Path]) -> None:
    prom_url, prom_config = prometheus
    fleet = await start_fleet(2, profile="instant", loras=())
    gateway = Gateway(parse_platform(_platform(fleet.urls), "platform.yaml"))
    await gateway.start()
    runner, port = await start_listener(gateway, "127.0.0.1", 0)
    gateway_url = f"http://127.0.0.1:{port}"
    try:
        objects = render(render_input(_platform(fleet.urls)))
        (scaled,) = [o for o in objects if o["kind"] == "ScaledObject"]
        triggers = {t["name"]: t["metadata"]["query"] for t in scaled["spec"]["triggers"]}
        assert set(triggers) == {"tokens", "saturation", "demand"}
        (board,) = [o for o in objects if o["metadata"]["name"] == "tokenway-dashboard"]
        panels = json.loads(board["data"]["tokenway.json"])["panels"]

        prom_config.write_text(yaml.safe_dump(_prometheus_config(fleet.urls, gateway_url)))
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{prom_url}/-/reload") as response:
                assert response.status == 200
            request = {"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 16}  # fmt: skip
            values: dict[str, float] = {}
            for _ in range(120):
                for _ in range(4):
                    async with session.post(
                        f"{gateway_url}/v1/chat/completions", json=request
                    ) as r:
                        assert r.status == 200, await r.text()
                for name, expr in triggers.items():
                    body = await _query(session, prom_url, expr)
                    assert body["status"] == "success", (name, body)
                    if body["data"]["result"]:
                        values[name] = float(body["data"]["result"][0]["value"][1])
                if len(values) == len(triggers) and values["tokens"] > 0 and values["demand"] > 0:
                    break
                await asyncio.sleep(0.25)
            assert set(values) == set(triggers), values
            assert values["tokens"] > 0 and values["demand"] > 0, values
            assert all(math.isfinite(v) and v >= 0 for v in values.values()), values
            for panel in panels:
                for target in panel["targets"]:
                    body = await _query(session, prom_url, target["expr"])
                    assert body["status"] == "success", (panel["title"], body)
    finally:
        await runner.cleanup()
        await gateway.stop()
        await fleet.stop()
