"""The scraper against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from tests.conftest import free_port

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.datalayer.scraper import MetricsScraper
from tokenway.net.http_client import HttpClient

FIXTURES = Path(__file__).parent / "fixtures"


class MetricsServer:
    """A model server's metrics endpoint whose page, status and pace the test controls."""

    def __init__(self, page: str, path: str = "/metrics") -> None:
        self.page = page
        self.status = 200
        self.gate: asyncio.Event | None = None
        self.requests = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self.seen = asyncio.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = web.Application()
        app.router.add_get(path, self._metrics)
        self._runner = web.AppRunner(app)

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.seen.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            return web.Response(
                text=self.page, status=self.status, content_type="text/plain", charset="utf-8"
            )
        finally:
            self.concurrent -= 1


class Servers:
    def __init__(self) -> None:
        self.started: list[MetricsServer] = []

    async def __call__(self, fixture: str, path: str = "/metrics") -> MetricsServer:
        server = MetricsServer((FIXTURES / fixture).read_text(), path)
        await server.start()
        self.started.append(server)
        return server


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    started = Servers()
    yield started
    for server in started.started:
        await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def registry() -> EndpointRegistry:
    return EndpointRegistry(time.monotonic)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for a condition the scraper should bring about; fail if it never does."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def snapshot(registry: EndpointRegistry, url: str, pool: str = "p") -> EndpointSnapshot:
    (found,) = [s for s in registry.snapshots(pool) if s.url == url]
    return found


async def test_scrapes_every_engine_at_its_path(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    vllm = await servers("vllm.prom")
    sglang = await servers("sglang.prom")
    trtllm = await servers("trtllm.prom", "/prometheus/metrics")
    llamacpp = await servers("llamacpp.prom")
    plain = await servers("vllm.prom")
    registry.set_pool("v", [vllm.url], "vllm")
    registry.set_pool("s", [sglang.url], "sglang")
    registry.set_pool("t", [trtllm.url], "trtllm")
    registry.set_pool("l", [llamacpp.url], "llamacpp")
    registry.set_pool("o", [plain.url], "openai")

    await MetricsScraper(registry, session).scrape_once()

    assert snapshot(registry, vllm.url, "v").metrics.running_loras == {"sql-lora", "chat-lora"}
    assert snapshot(registry, sglang.url, "s").metrics.kv_usage == 0.62
    assert snapshot(registry, trtllm.url, "t").metrics.num_blocks == 8192
    assert snapshot(registry, llamacpp.url, "l").metrics.waiting == 2
    for pool, server in (("v", vllm), ("s", sglang), ("t", trtllm), ("l", llamacpp)):
        age = snapshot(registry, server.url, pool).metrics_age
        assert age is not None and age >= 0
    assert plain.requests == 0
    assert snapshot(registry, plain.url, "o").healthy


async def test_failed_scrapes_make_unready_and_a_good_one_recovers(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    server = await servers("vllm.prom")
    nobody = f"http://127.0.0.1:{free_port()}"
    registry.set_pool("p", [server.url, nobody], "vllm")
    scraper = MetricsScraper(registry, session)

    server.status = 500
    await scraper.scrape_once()
    assert not snapshot(registry, server.url).healthy
    assert not snapshot(registry, nobody).healthy

    server.status = 200
    server.page = "<html>maintenance</html>"
    await scraper.scrape_once()
    assert not snapshot(registry, server.url).healthy

    server.page = (FIXTURES / "vllm.prom").read_text()
    await scraper.scrape_once()
    assert snapshot(registry, server.url).healthy
    assert snapshot(registry, server.url).metrics.waiting == 3


async def test_the_loop_follows_changes_and_endpoint_churn(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    first = await servers("vllm.prom")
    second = await servers("llamacpp.prom")
    registry.set_pool("p", [first.url], "vllm")
    scraper = MetricsScraper(registry, session, interval=0.01)
    scraper.start()
    try:
        await eventually(lambda: snapshot(registry, first.url).metrics.waiting == 3)
        waiting = (
            'vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct",engine="0"'
        )
        first.page = first.page.replace(waiting + "} 3.0", waiting + "} 41.0")
        await eventually(lambda: snapshot(registry, first.url).metrics.waiting == 41)

        registry.set_pool("p", [second.url], "llamacpp")
        await eventually(lambda: snapshot(registry, second.url).metrics.running == 3)
        scraped = first.requests
        await eventually(lambda: second.requests >= 5)
        assert first.requests <= scraped + 1  # at most the scrape already in flight
    finally:
        await scraper.stop()


async def test_a_slow_endpoint_has_one_scrape_in_flight(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    slow = await servers("vllm.prom")
    fast = await servers("vllm.prom")
    slow.gate = asyncio.Event()
    registry.set_pool("p", [slow.url, fast.url], "vllm")
    scraper = MetricsScraper(registry, session, interval=0.005, timeout=30)
    scraper.start()
    try:
        await eventually(lambda: fast.requests >= 20)
        assert (slow.requests, slow.max_concurrent) == (1, 1)
        assert snapshot(registry, slow.url).metrics_age is None
        assert snapshot(registry, slow.url).healthy  # no verdict yet
        slow.gate.set()
        await eventually(lambda: snapshot(registry, slow.url).metrics_age is not None)
        await eventually(lambda: slow.requests >= 3)
    finally:
        await scraper.stop()


async def test_a_scrape_past_the_timeout_fails(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    server = await servers("vllm.prom")
    server.gate = asyncio.Event()
    registry.set_pool("p", [server.url], "vllm")
    scraper = MetricsScraper(registry, session, interval=0.01, timeout=0.2)
    scraper.start()
    try:
        await eventually(lambda: not snapshot(registry, server.url).healthy)
        server.gate.set()
        await eventually(lambda: snapshot(registry, server.url).healthy)
    finally:
        await scraper.stop()


async def test_stop_cancels_scrapes_in_flight_and_start_is_guarded(
    servers: Servers, session: HttpClient, registry: EndpointRegistry
) -> None:
    server = await servers("vllm.prom")
    server.gate = asyncio.Event()
    registry.set_pool("p", [server.url], "vllm")
    scraper = MetricsScraper(registry, session, interval=0.01, timeout=30)
    await scraper.stop()  # not running: nothing to do
    scraper.start()
    with pytest.raises(RuntimeError, match="already running"):
        scraper.start()
    await server.seen.wait()
    await scraper.stop()
    await scraper.stop()
    assert snapshot(registry, server.url).metrics_age is None
    assert snapshot(registry, server.url).healthy  # a cancelled scrape is not a failed one
    scraper.start()
    server.gate.set()
    await eventually(lambda: snapshot(registry, server.url).metrics_age is not None)
    await scraper.stop()


def test_interval_and_timeout_must_be_positive(registry: EndpointRegistry) -> None:
    with pytest.raises(ValueError, match="positive"):
        MetricsScraper(registry, None, interval=0)  # type: ignore[arg-type]


async def test_scrapes_the_simulated_vllm_replica(
    session: HttpClient, registry: EndpointRegistry
) -> None:
    from tokenway.sim.server import ReplicaConfig, SimServer

    sim = SimServer(ReplicaConfig(loras=("sql-lora",), max_loras=2))
    url = await sim.start()
    try:
        registry.set_pool("p", [url], "vllm")
        scraper = MetricsScraper(registry, session)
        await scraper.scrape_once()
        idle = snapshot(registry, url)
        assert idle.healthy and idle.metrics.running == 0
        assert (idle.metrics.block_size, idle.metrics.max_loras) == (16, 2)
        assert idle.metrics.num_blocks

        body = {
            "model": "sql-lora",
            "messages": [{"role": "user", "content": "count " * 40}],
            "max_tokens": 30,
            "stream": True,
        }
        response = await session.request(
            "POST", url + "/v1/chat/completions", body=json.dumps(body).encode()
        )
        try:
            await anext(response.chunks())
            await scraper.scrape_once()
            busy = snapshot(registry, url).metrics
        finally:
            response.close()
        assert busy.running == 1
        assert busy.running_loras == {"sql-lora"}
        assert busy.kv_usage > 0
        assert busy.prefix_cache_queries > 0
    finally:
        await sim.stop()
