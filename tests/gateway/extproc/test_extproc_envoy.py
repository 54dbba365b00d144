"""Conformance-style checks: a real Envoy in front of the picker (the upstream suite, locally)."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from extproc_stack import chat, eventually, platform, post, running_backends, running_stack
from tests.conftest import free_port

from tokenway.gateway.extproc.bootstrap import HEALTH_CHECK_INTERVAL
from tokenway.gateway.gateway import Gateway


async def _load(
    url: str, requests: int, concurrency: int, body: dict[str, object] | None = None
) -> list[tuple[int, dict[str, str], bytes]]:
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> tuple[int, dict[str, str], bytes]:
            async with semaphore:
                return await post(session, url, body or chat(content=f"request {i}"))

        return await asyncio.gather(*(one(i) for i in range(requests)))


@pytest.mark.parametrize(
    "layout",
    [
        [("127.0.0.1", 0), ("127.0.0.1", 0), ("127.0.0.1", 0)],
        # Two pods with two data-parallel ranks (target ports) each.
        [("127.0.0.2", 0), ("127.0.0.2", 0), ("127.0.0.3", 0), ("127.0.0.3", 0)],
    ],
    ids=["one-port-per-pod", "data-parallel-ranks"],
)
async def test_requests_land_only_on_named_endpoints(layout: list[tuple[str, int]]) -> None:
    addresses = [(host, free_port()) for host, _ in layout]
    async with running_backends(addresses) as backends, running_stack(platform(backends)) as stack:
        results = await _load(stack.url, 100, 10)
    assert [status for status, _, _ in results] == [200] * 100
    received = [(b.address, r) for b in backends for r in b.received]
    assert len(received) == 100
    for address, request in received:
        assert request.destination.split(",")[0] == address
    served = {headers["x-served-by"] for _, headers, _ in results}
    assert len(served) > 1, "the picker spread load over the pool"


async def test_weighted_split_holds_within_tolerance() -> None:
    models = [
        {
            "name": "m",
            "pool": "pool",
            "targets": [{"model": "m-a", "weight": 70}, {"model": "m-b", "weight": 30}],
        }
    ]
    addresses = [("127.0.0.1", free_port()) for _ in range(2)]
    async with (
        running_backends(addresses) as backends,
        running_stack(platform(backends, models)) as stack,
    ):
        results = await _load(stack.url, 200, 10)
    assert all(status == 200 for status, _, _ in results)
    counts = Counter(r.model for b in backends for r in b.received)
    # Binomial(200, 0.7): sd 6.5; 4.5 sd either side.
    assert 111 <= counts["m-a"] <= 169
    assert counts["m-a"] + counts["m-b"] == 200


async def test_fallbacks_are_used_in_order_when_the_first_fails() -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(3)]
    async with running_backends(addresses) as backends, running_stack(platform(backends)) as stack:
        failing = backends[0]
        failing.fail_with = 503
        results = await _load(stack.url, 30, 5)
        retries = sum(
            sample.value
            for metric in stack.gateways[0].metrics.registry.collect()
            for sample in metric.samples
            if sample.name == "tokenway_retries_total"
        )
    assert [status for status, _, _ in results] == [200] * 30, [
        b for status, _, b in results if status != 200
    ]
    by_address = {b.address: b for b in backends}
    walked = 0
    for backend in backends[1:]:
        for request in backend.received:
            order = request.destination.split(",")
            position = order.index(backend.address)
            # Every endpoint ahead of the one that served is the failing one.
            assert all(by_address[a].fail_with for a in order[:position])
            walked += position
    assert failing.received, "the failing endpoint was tried first at least once"
    # The picker learned which endpoint served (served-endpoint metadata): retries counted.
    assert retries == walked == len(failing.received)


async def test_fail_open_serves_without_the_picker() -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(2)]
    async with running_backends(addresses) as backends:
        config = platform(backends, picker={"failureMode": "FailOpen"})
        async with running_stack(config) as stack:
            await stack.pickers[0].stop(grace=0)
            results = await _load(stack.url, 10, 2)
    assert [status for status, _, _ in results] == [200] * 10
    assert all(r.destination == "" for b in backends for r in b.received)


async def test_fail_close_fails_without_the_picker() -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(2)]
    async with running_backends(addresses) as backends:
        config = platform(backends, picker={"failureMode": "FailClose"})
        async with running_stack(config) as stack:
            await stack.pickers[0].stop(grace=0)
            results = await _load(stack.url, 5, 1)
    assert all(status >= 500 for status, _, _ in results)
    assert not any(b.received for b in backends)


def _decided(gateway: Gateway) -> float:
    return sum(
        s.value
        for metric in gateway.metrics.registry.collect()
        for s in metric.samples
        if s.name == "tokenway_requests_total"
    )


async def _load_until(url: str, stop: asyncio.Event, concurrency: int) -> list[int]:
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while not stop.is_set():
                try:
                    status, _, _ = await post(session, url, chat())
                except aiohttp.ClientPayloadError:
                    status = -1  # cut mid-response
                statuses.append(status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


@pytest.mark.parametrize("crash", [False, True], ids=["drained", "crashed"])
async def test_two_active_pickers_and_one_goes_away_under_load(crash: bool) -> None:
    addresses = [("127.0.0.1", free_port()) for _ in range(3)]
    async with running_backends(addresses) as backends:
        config = platform(backends, picker={"failureMode": "FailOpen"})
        async with running_stack(config, replicas=2) as stack:
            stop = asyncio.Event()
            load = asyncio.create_task(_load_until(stack.url, stop, 10))
            await eventually(lambda: sum(len(b.received) for b in backends) >= 50)
            if crash:
                await stack.pickers[0].stop(grace=0)
            else:
                await stack.pickers[0].stop(grace=5, drain=2 * HEALTH_CHECK_INTERVAL)
            served = sum(len(b.received) for b in backends)
            await eventually(lambda: sum(len(b.received) for b in backends) >= served + 50)
            stop.set()
            statuses = await load
            decided = [_decided(gateway) for gateway in stack.gateways]
    assert all(count > 0 for count in decided), "both replicas were active"
    failed = [s for s in statuses if s != 200]
    if crash:
        # Streams cut mid-response cannot fail open (Envoy has handed their bytes to the
        # picker); at most the requests in flight on the crashed replica fail.
        assert len(failed) <= 10
    else:
        assert failed == []


async def test_the_peer_is_envoys_downstream_not_x_forwarded_for() -> None:
    async with (
        running_backends([("127.0.0.1", free_port())]) as backends,
        running_stack(platform(backends)) as stack,
    ):
        pipeline = stack.gateways[0].pipeline
        prepare = pipeline.prepare
        peers: list[str] = []

        async def spying(inbound, **kwargs):  # type: ignore[no-untyped-def]
            peers.append(inbound.peer)
            return await prepare(inbound, **kwargs)

        pipeline.prepare = spying  # type: ignore[method-assign]
        async with aiohttp.ClientSession() as session:
            status, _, _ = await post(session, stack.url, chat(), **{"x-forwarded-for": "10.9.0.7"})
    assert status == 200
    assert peers == ["127.0.0.1"]
