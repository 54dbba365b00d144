"""In-cluster endpoint discovery: InferencePools and their pods -> EndpointRegistry.set_pool.

One informer per kind per namespace; every change recomputes the pools of that namespace and
hands changed endpoint sets to the sink. RBAC needed: get/list/watch on pods and inferencepools
(the rendered picker Role grants exactly that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lightkube import AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod

from tokenway.config.platform import PlatformConfig
from tokenway.kube.endpoints import PoolEndpoints, pod_view, pool_endpoints
from tokenway.kube.informer import Informer

InferencePool = create_namespaced_resource(
    "inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"
)


class PoolSink(Protocol):
    """Where discovered endpoints go: tokenway.datalayer.registry.EndpointRegistry."""

    def set_pool(self, pool: str, urls: Iterable[str], engine: str) -> None: ...


@dataclass(frozen=True, slots=True)
class WatchedPool:
    """A platform-file pool backed by the InferencePool `name` in `namespace`."""

    pool: str
    name: str
    namespace: str


def watched_pools(config: PlatformConfig) -> list[WatchedPool]:
    return [
        WatchedPool(p.name, p.inference_pool.name, p.inference_pool.namespace)
        for p in config.pools
        if p.inference_pool is not None
    ]


class _Namespace:
    """The pools of one namespace, recomputed from both informers' current objects.

    Nothing is published until both informers have listed once: with only one side known a
    pool would look empty, and emptying it drops its endpoints' state (in-flight counts,
    health, metrics) and turns requests away meanwhile."""

    def __init__(self, pools: Sequence[WatchedPool], sink: PoolSink) -> None:
        self._pools = pools
        self._sink = sink
        self._inference_pools: dict[str, Any] | None = None
        self._pods: dict[str, Any] | None = None
        self._sent: dict[str, PoolEndpoints] = {}

    def pools_changed(self, objects: dict[str, Any]) -> None:
        self._inference_pools = objects
        self._publish()

    def pods_changed(self, objects: dict[str, Any]) -> None:
        self._pods = objects
        self._publish()

    def _publish(self) -> None:
        if self._inference_pools is None or self._pods is None:
            return
        pods = [pod_view(p) for p in self._pods.values()]
        for watched in self._pools:
            resource = self._inference_pools.get(watched.name)
            spec = dict(resource.spec) if resource is not None and resource.spec else {}
            found = pool_endpoints(spec, pods)
            if self._sent.get(watched.pool) != found:
                self._sent[watched.pool] = found
                self._sink.set_pool(watched.pool, found.urls, found.engine)


class PoolDiscovery:
    """Runs the informers for every namespace that holds a watched InferencePool."""

    def __init__(
        self,
        client: AsyncClient,
        pools: Sequence[WatchedPool],
        sink: PoolSink,
        backoff: float = 1.0,
        server_timeout: int = 300,
    ) -> None:
        self.informers: list[Informer] = []
        for namespace in sorted({p.namespace for p in pools}):
            state = _Namespace([p for p in pools if p.namespace == namespace], sink)
            for resource, on_change in (
                (InferencePool, state.pools_changed),
                (Pod, state.pods_changed),
            ):
                self.informers.append(
                    Informer(client, resource, namespace, on_change, backoff, server_timeout)
                )

    async def run(self) -> None:
        """Until cancelled."""
        async with asyncio.TaskGroup() as group:
            for informer in self.informers:
                group.create_task(informer.run())


async def discover(config: PlatformConfig, sink: PoolSink) -> None:
    """Feed `sink` with the endpoints of every pool that names an InferencePool, until cancelled.

    Credentials come from the pod's service account (or KUBECONFIG outside a cluster).
    """
    pools = watched_pools(config)
    if not pools:
        return
    client = AsyncClient(config=KubeConfig.from_env())
    try:
        await PoolDiscovery(client, pools, sink).run()
    finally:
        await client.close()
