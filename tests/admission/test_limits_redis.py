"""Limits shared through a real Redis server, started and stopped by these tests."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry
from tests.admission.test_limits import SEARCH, Clock, ctx
from tests.conftest import free_port

from tokenway.admission.limits.factory import build_limiter
from tokenway.admission.limits.limiter import STORE_RETRY_S, Limiter, LimitReservation
from tokenway.admission.limits.memory_store import MemoryStore
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.config.loader import parse_platform
from tokenway.gateway.context import Usage
from tokenway.gateway.errors import GatewayError

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class RedisServer:
    """One redis-server on 127.0.0.1 without persistence; stop() kills it by its PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            for _ in range(100):
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
            raise RuntimeError("redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def config(url: str, team: dict[str, Any], on_unavailable: str = "fail-open") -> Any:
    return parse_platform(
        yaml.safe_dump(
            {
                "teams": [{"name": "search"} | team],
                "limitsStore": {"redis": url, "onUnavailable": on_unavailable, "timeout": "5s"},
            }
        )
    )


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[list[Limiter]]:
    team = {"limits": [{"tokens": 20_000, "per": "minute"}, {"concurrent": 150}]}
    built = [
        build_limiter(config(redis_server.url, team), Clock(), UsageMetrics(CollectorRegistry()))
        for _ in range(3)
    ]
    yield built
    for limiter in built:
        await limiter.close()


async def run_load(limiters: list[Limiter], n: int, seed: int) -> tuple[int, int, int]:
    """n concurrent requests spread over the limiters: (admitted estimate, actual, refused)."""
    rng = random.Random(seed)
    admitted, actual, refused = 0, 0, 0

    async def one(i: int) -> None:
        nonlocal admitted, actual, refused
        limiter = limiters[i % len(limiters)]
        max_tokens, prompt = rng.randint(50, 400), rng.randint(10, 100)
        try:
            reservation = await limiter.reserve(
                ctx(max_tokens=max_tokens, prompt=prompt, request_id=f"r{i}")
            )
        except GatewayError as error:
            assert error.status == 429
            refused += 1
            return
        admitted += max_tokens + prompt
        await asyncio.sleep(rng.random() * 0.01)
        used = Usage(prompt, rng.randint(0, max_tokens))
        actual += used.total_tokens
        await reservation.settle(used)

    await asyncio.gather(*(one(i) for i in range(n)))
    return admitted, actual, refused


async def test_three_replicas_hold_one_limit(replicas: list[Limiter]) -> None:
    _, actual, refused = await run_load(replicas, 200, seed=1)
    # Each reservation checks and takes its estimate atomically in Redis, and settling only
    # lowers an estimate to the actual usage, so the tokens admitted stay within the limit:
    # stronger than the bound of one request's max_tokens per replica.
    assert actual <= 20_000
    assert refused > 0
    report = await replicas[0].usage("search", [])
    rows = {row["kind"]: row for row in report["limits"]}  # type: ignore[union-attr]
    assert rows["tokens"]["used"] == actual
    assert rows["concurrent"]["used"] == 0


async def test_per_replica_memory_would_let_three_times_the_limit_through() -> None:
    # The same load against three independent in-memory stores: the failure mode of limits that
    # live in each replica, which the shared store prevents.
    team = {"limits": [{"tokens": 20_000, "per": "minute"}]}
    limiters = [
        build_limiter(
            config("redis://unused", team),
            Clock(),
            UsageMetrics(CollectorRegistry()),
            MemoryStore(),
        )
        for _ in range(3)
    ]
    _, actual, _ = await run_load(limiters, 200, seed=1)
    assert actual > 20_000 + 3 * 400


@pytest.mark.parametrize("usage", [Usage(20, 100), Usage(20, 37), None, Usage(20, 0)])
async def test_settle_is_exact_through_redis(
    redis_server: RedisServer, usage: Usage | None
) -> None:
    limiter = build_limiter(
        config(redis_server.url, {"limits": [{"tokens": 1000, "per": "hour"}]}),
        Clock(),
        UsageMetrics(CollectorRegistry()),
    )
    try:
        reservation = await limiter.reserve(ctx(max_tokens=100, prompt=20))
        assert reservation.headers()["x-ratelimit-remaining-tokens"] == "880"
        await reservation.settle(usage)
        used = (await limiter.usage("search", []))["limits"][0]["used"]  # type: ignore[index]
        assert used == (usage.total_tokens if usage else 0)
    finally:
        await limiter.close()


UNAVAILABLE = "tokenway_limits_store_unavailable_total"


async def reserve_or_error(limiter: Limiter) -> LimitReservation | GatewayError:
    try:
        return await limiter.reserve(ctx(max_tokens=10, prompt=10))
    except GatewayError as error:
        return error


async def test_redis_down_fail_open_then_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    registry, clock = CollectorRegistry(), Clock()
    team = {"limits": [{"tokens": 1000, "per": "hour"}, {"concurrent": 5}]}
    limiter = build_limiter(config(redis_server.url, team), clock, UsageMetrics(registry))
    caplog.set_level(logging.WARNING, logger="tokenway.admission.limits")
    try:
        before = await limiter.reserve(ctx(max_tokens=10, prompt=10))
        redis_server.stop()
        during = [await reserve_or_error(limiter) for _ in range(5)]
        assert all(isinstance(r, LimitReservation) and not r.reserved for r in during)
        await before.settle(Usage(10, 10))  # lost while down: counted in the metric
        for operation, outcome, count in (("reserve", "fail-open", 5), ("settle", "usage-lost", 1)):
            labels = {"operation": operation, "outcome": outcome}
            assert registry.get_sample_value(UNAVAILABLE, labels) == count
        assert caplog.text.count("limits store unavailable") == 1
        redis_server.start()
        still_waiting = await limiter.reserve(ctx(max_tokens=10, prompt=10))
        assert not still_waiting.reserved  # no store call until STORE_RETRY_S has passed
        clock.now += STORE_RETRY_S
        after = await limiter.reserve(ctx(max_tokens=10, prompt=10))
        assert after.reserved and "available again" in caplog.text
        for reservation in during:
            assert isinstance(reservation, LimitReservation)
            await reservation.settle(Usage(10, 5))  # charged in full once the store is back
        used = (await limiter.usage("search", []))["limits"][0]["used"]  # type: ignore[index]
        assert used == 20 + 5 * 15
    finally:
        await limiter.close()


async def test_redis_down_fail_closed_refuses_with_503(redis_server: RedisServer) -> None:
    team, clock = {"limits": [{"tokens": 1000, "per": "hour"}]}, Clock()
    limiter = build_limiter(
        config(redis_server.url, team, "fail-closed"), clock, UsageMetrics(CollectorRegistry())
    )
    try:
        assert isinstance(await reserve_or_error(limiter), LimitReservation)
        redis_server.stop()
        error = await reserve_or_error(limiter)
        assert isinstance(error, GatewayError) and error.status == 503
        assert error.headers["Retry-After"] == "1"
        redis_server.start()
        clock.now += STORE_RETRY_S
        assert isinstance(await reserve_or_error(limiter), LimitReservation)
    finally:
        await limiter.close()


async def test_redis_killed_mid_run_the_service_continues(redis_server: RedisServer) -> None:
    team = {"limits": [{"tokens": 10**6, "per": "minute"}, {"concurrent": 500}]}
    registries, clock = [CollectorRegistry() for _ in range(3)], Clock()
    limiters = [
        build_limiter(config(redis_server.url, team), clock, UsageMetrics(r)) for r in registries
    ]
    try:
        load = asyncio.create_task(run_load(limiters, 200, seed=2))
        await asyncio.sleep(0.01)
        redis_server.stop()
        await asyncio.sleep(0.05)
        redis_server.start()
        admitted, _, refused = await load
        assert refused == 0 and admitted > 0  # fail-open: nobody refused, nothing crashed
        labels = {"operation": "reserve", "outcome": "fail-open"}
        assert sum(r.get_sample_value(UNAVAILABLE, labels) or 0 for r in registries) > 0
        clock.now += STORE_RETRY_S
        for limiter in limiters:
            reservation = await reserve_or_error(limiter)
            assert isinstance(reservation, LimitReservation) and reservation.reserved
    finally:
        for limiter in limiters:
            await limiter.close()


async def test_concurrency_is_shared_across_replicas(redis_server: RedisServer) -> None:
    team = {"limits": [{"concurrent": 2}]}
    a, b = (
        build_limiter(config(redis_server.url, team), Clock(), UsageMetrics(CollectorRegistry()))
        for _ in range(2)
    )
    try:
        first = await a.reserve(ctx(request_id="1"))
        await b.reserve(ctx(request_id="2"))
        assert isinstance(await reserve_or_error(a), GatewayError)
        await first.settle(None)
        assert isinstance(await reserve_or_error(b), LimitReservation)
        assert SEARCH.team == "search"
    finally:
        await a.close()
        await b.close()


async def test_a_store_that_never_answers_is_bounded_by_the_timeout(port: int) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts and reads, never answers (a hung or blackholed Redis)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", port)
    registry, clock = CollectorRegistry(), Clock()
    settings = {"redis": f"redis://127.0.0.1:{port}/0", "timeout": "100ms"}
    data = {"teams": [{"name": "search", "limits": [{"tokens": 100}]}], "limitsStore": settings}
    limiter = build_limiter(parse_platform(yaml.safe_dump(data)), clock, UsageMetrics(registry))
    try:
        first = await limiter.reserve(ctx(max_tokens=10, prompt=0))
        second = await limiter.reserve(ctx(max_tokens=10, prompt=0))
        assert not first.reserved and not second.reserved
        labels = {"operation": "reserve", "outcome": "fail-open"}
        assert registry.get_sample_value(UNAVAILABLE, labels) == 2
    finally:
        await limiter.close()
        server.close()
        await server.wait_closed()
