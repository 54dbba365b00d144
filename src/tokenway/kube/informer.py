"""List, then watch, one kind in one namespace with lightkube; relist after any watch failure.

The local copy is replaced on every (re)list, so events missed while disconnected (a 410 Gone
for a compacted resourceVersion, a dropped connection) cannot leave stale objects behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient

log = logging.getLogger(__name__)

OnChange = Callable[[dict[str, Any]], None]


class Informer:
    """Keeps `objects` (name -> object) in step with the API server, calling `on_change(objects)`
    after each list and each event. `backoff` is the pause after a failure (not after a 410)."""

    def __init__(
        self,
        client: AsyncClient,
        resource: type,
        namespace: str,
        on_change: OnChange,
        backoff: float = 1.0,
        server_timeout: int = 300,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._on_change = on_change
        self._backoff = backoff
        self._server_timeout = server_timeout
        self.objects: dict[str, Any] = {}
        self.relists = 0

    async def _list(self) -> str:
        listing = self._client.list(self._resource, namespace=self._namespace)
        objects = {obj.metadata.name: obj async for obj in listing}
        self.objects = objects
        self.relists += 1
        self._on_change(self.objects)
        return listing.resourceVersion

    def _watch(self, version: str) -> Any:
        # lightkube's watch() has no bookmark option; build the same request with it set.
        generic = self._client._client
        request = generic.prepare_request(
            "list",
            res=self._resource,
            namespace=self._namespace,
            watch=True,
            params={
                "timeoutSeconds": self._server_timeout,
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
            },
        )
        return generic.watch(request)

    async def run(self) -> None:
        """Forever: list, watch from the list's version, and start over on any failure."""
        while True:
            try:
                version = await self._list()
                async for kind, obj in self._watch(version):
                    if kind == "BOOKMARK":
                        continue  # lightkube already resumes from the bookmark's version
                    if kind == "DELETED":
                        self.objects.pop(obj.metadata.name, None)
                    else:
                        self.objects[obj.metadata.name] = obj
                    self._on_change(self.objects)
            except ApiError as exc:
                if exc.status.code == 410:
                    log.info(
                        "%s in %s: resourceVersion expired, relisting", self._name, self._namespace
                    )
                    continue
                log.warning("%s in %s: %s; relisting", self._name, self._namespace, exc)
                await asyncio.sleep(self._backoff)
            except (httpx2.HTTPError, OSError, ValueError) as exc:
                log.warning("%s in %s: %s; relisting", self._name, self._namespace, exc)
                await asyncio.sleep(self._backoff)

    @property
    def _name(self) -> str:
        return self._resource.__name__
