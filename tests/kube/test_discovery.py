"""Discovery against the fake API server: list, watch, readiness, 410 Gone and broken streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import Pod
from tests.kube.fake_apiserver import FakeApiServer, inference_pool, pod

from tokenway.datalayer.registry import EndpointRegistry
from tokenway.kube.discovery import InferencePool, PoolDiscovery, WatchedPool, _Namespace
from tokenway.kube.endpoints import PodView, pool_endpoints

LABELS = {"tokenway.io/pool": "llama-8b"}
NS = "models"


@pytest.fixture
async def server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def registry(server: FakeApiServer) -> AsyncIterator[EndpointRegistry]:
    registry = EndpointRegistry(clock=time.monotonic)
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
            "users": [{"name": "picker", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "picker"}}],
            "current-context": "fake",
        }
    )
    client = AsyncClient(config=config, namespace=NS, trust_env=False)
    discovery = PoolDiscovery(
        client, [WatchedPool("llama-8b", "llama-8b", NS)], registry, backoff=0.05, server_timeout=5
    )
    task = asyncio.create_task(discovery.run())
    try:
        yield registry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


def _urls(registry: EndpointRegistry) -> list[str]:
    return sorted(s.url for s in registry.snapshots("llama-8b"))


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition not reached")


def test_ready_pods_times_target_ports() -> None:
    pods = [
        PodView(
            "a",
            {**LABELS, "inference.networking.k8s.io/engine-type": "sglang"},
            "10.0.0.1",
            True,
            False,
        ),
        PodView("b", LABELS, "10.0.0.2", False, False),
        PodView("c", LABELS, "10.0.0.3", True, True),
        PodView("d", {"tokenway.io/pool": "other"}, "10.0.0.4", True, False),
        PodView("e", LABELS, "fd00::5", True, False),
    ]
    spec = inference_pool("llama-8b", LABELS, [8001, 8000])["spec"]
    found = pool_endpoints(spec, pods)
    assert found.urls == (
        "http://10.0.0.1:8000", "http://10.0.0.1:8001", "http://[fd00::5]:8000", "http://[fd00::5]:8001",
    )  # fmt: skip
    assert found.engine in ("sglang", "vllm")
    assert pool_endpoints({}, pods).urls == ()


async def test_list_then_watch_follows_pods(
    server: FakeApiServer, registry: EndpointRegistry
) -> None:
    server.apply("inferencepools", NS, inference_pool("llama-8b", LABELS, [8000]))
    server.apply("pods", NS, pod("a", "10.0.0.1", LABELS))
    await _until(lambda: _urls(registry) == ["http://10.0.0.1:8000"])
    server.apply("pods", NS, pod("b", "10.0.0.2", LABELS, ready=False))
    server.apply("pods", NS, pod("c", "10.0.0.3", {"tokenway.io/pool": "other"}))
    server.apply("pods", NS, pod("b", "10.0.0.2", LABELS, ready=True))
    await _until(lambda: _urls(registry) == ["http://10.0.0.1:8000", "http://10.0.0.2:8000"])
    server.delete("pods", NS, "a")
    await _until(lambda: _urls(registry) == ["http://10.0.0.2:8000"])
    server.apply("inferencepools", NS, inference_pool("llama-8b", LABELS, [8000, 8001]))
    await _until(lambda: _urls(registry) == ["http://10.0.0.2:8000", "http://10.0.0.2:8001"])
    assert registry.scrape_targets()[0][1] == "vllm"
    server.delete("inferencepools", NS, "llama-8b")
    await _until(lambda: _urls(registry) == [])


async def _watching(server: FakeApiServer) -> None:
    await _until(
        lambda: (
            {"WATCH pods", "WATCH inferencepools"} <= {r.rsplit(" ", 1)[0] for r in server.requests}
        )
    )


async def test_gone_resource_version_relists(
    server: FakeApiServer, registry: EndpointRegistry
) -> None:
    server.apply("inferencepools", NS, inference_pool("llama-8b", LABELS, [8000]))
    server.apply("pods", NS, pod("a", "10.0.0.1", LABELS))
    await _until(lambda: _urls(registry) == ["http://10.0.0.1:8000"])
    await _watching(server)
    lists = server.requests.count("LIST pods")
    # A deletion the watch never delivers, then compaction; when the stream ends the client
    # resumes from its old version, gets 410 Gone, and only a relist shows the deletion.
    server.objects.pop(("pods", NS, "a"))
    server.apply("pods", NS, pod("b", "10.0.0.2", LABELS))
    server.compact()
    server.end_watches()
    await _until(lambda: _urls(registry) == ["http://10.0.0.2:8000"])
    assert server.sent["ERROR"] >= 1
    assert server.requests.count("LIST pods") > lists


async def test_broken_stream_relists_and_bookmarks_are_sent(
    server: FakeApiServer, registry: EndpointRegistry
) -> None:
    server.apply("inferencepools", NS, inference_pool("llama-8b", LABELS, [8000]))
    await _watching(server)
    await _until(lambda: server.sent["BOOKMARK"] >= 2)  # nothing changes; bookmarks flow
    server.cut_watches()
    server.apply("pods", NS, pod("a", "10.0.0.1", LABELS))
    await _until(lambda: _urls(registry) == ["http://10.0.0.1:8000"])
    assert server.requests.count("LIST pods") >= 2
    assert server.sent["ERROR"] == 0


def test_nothing_is_published_before_both_informers_listed() -> None:
    calls: list[tuple[str, tuple[str, ...], str]] = []

    class Sink:
        def set_pool(self, pool: str, urls: Iterable[str], engine: str) -> None:
            calls.append((pool, tuple(urls), engine))

    namespace = _Namespace([WatchedPool("llama-8b", "llama-8b", NS)], Sink())
    namespace.pods_changed({"a": Pod.from_dict(pod("a", "10.0.0.1", LABELS))})
    assert calls == []  # the pool's selector is not known yet: it is not empty
    resource = InferencePool.from_dict(inference_pool("llama-8b", LABELS, [8000]))
    namespace.pools_changed({"llama-8b": resource})
    assert [urls for _, urls, _ in calls] == [("http://10.0.0.1:8000",)]
