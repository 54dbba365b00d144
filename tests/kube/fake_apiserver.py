"""A fake Kubernetes API server for discovery tests (no real one runs on these machines).

It speaks the real list/watch wire protocol over HTTP on 127.0.0.1: lists carry
metadata.resourceVersion; `?watch=true&resourceVersion=N` answers with a chunked stream of
{"type", "object"} JSON lines (ADDED, MODIFIED, DELETED; BOOKMARK when allowWatchBookmarks is
set); a resourceVersion older than the kept history gets an ERROR event with a 410 Status, as a
compacted etcd makes the real server do. Tests change objects, compact history and cut
connections through its methods.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from typing import Any

from aiohttp import web
from tests.conftest import free_port

KINDS = {
    "pods": ("v1", "Pod", "/api/v1/namespaces/{namespace}/pods"),
    "inferencepools": (
        "inference.networking.k8s.io/v1",
        "InferencePool",
        "/apis/inference.networking.k8s.io/v1/namespaces/{namespace}/inferencepools",
    ),
}


class FakeApiServer:
    def __init__(self, bookmark_interval: float = 0.05) -> None:
        self.version = 1
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.oldest = 0
        """Watches from a resourceVersion below this get 410 Gone."""
        self.requests: list[str] = []
        self.sent: Counter[str] = Counter()
        """Watch events written, by type."""
        self._bookmark_interval = bookmark_interval
        self._changed = asyncio.Event()
        self._generation = 0
        self._clean_end = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        for plural, (_, _, path) in KINDS.items():
            app.router.add_get(path, self._handler(plural))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.cut_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests do to the cluster ------------------------------------------------------

    def apply(self, plural: str, namespace: str, obj: dict[str, Any]) -> None:
        api_version, kind, _ = KINDS[plural]
        name = obj["metadata"]["name"]
        key = (plural, namespace, name)
        kind_of_event = "MODIFIED" if key in self.objects else "ADDED"
        self.version += 1
        stored = {"apiVersion": api_version, "kind": kind, **copy.deepcopy(obj)}
        stored["metadata"] = {**stored["metadata"], "namespace": namespace,
                              "resourceVersion": str(self.version)}  # fmt: skip
        self.objects[key] = stored
        self._record(plural, namespace, kind_of_event, stored)

    def delete(self, plural: str, namespace: str, name: str) -> None:
        stored = self.objects.pop((plural, namespace, name))
        self.version += 1
        stored = {
            **stored,
            "metadata": {**stored["metadata"], "resourceVersion": str(self.version)},
        }
        self._record(plural, namespace, "DELETED", stored)

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: older versions become 410 Gone."""
        self.events.clear()
        self.oldest = self.version

    def cut_watches(self) -> None:
        """Drop every open watch connection mid-stream."""
        self._end_watches(clean=False)

    def end_watches(self) -> None:
        """End every open watch stream properly, as the server does at timeoutSeconds."""
        self._end_watches(clean=True)

    def _end_watches(self, clean: bool) -> None:
        self._generation += 1
        self._clean_end = clean
        self._wake()

    def _record(self, plural: str, namespace: str, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((self.version, plural, namespace, kind, obj))
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- the API ---------------------------------------------------------------------------

    def _handler(self, plural: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            namespace = request.match_info["namespace"]
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, plural, namespace)
            return self._list(plural, namespace)

        return handle

    def _list(self, plural: str, namespace: str) -> web.Response:
        self.requests.append(f"LIST {plural}")
        api_version, kind, _ = KINDS[plural]
        items = [
            o for (p, ns, _), o in sorted(self.objects.items()) if (p, ns) == (plural, namespace)
        ]
        body = {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self.version)},
            "items": items,
        }
        return web.json_response(body)

    async def _watch(self, request: web.Request, plural: str, namespace: str) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.version)
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        self.requests.append(f"WATCH {plural} {since}")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(event_type: str, obj: dict[str, Any]) -> None:
            self.sent[event_type] += 1
            await response.write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        if since < self.oldest:
            status = {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f"too old resource version: {since} ({self.oldest})",
                "reason": "Expired", "code": 410,
            }  # fmt: skip
            await send("ERROR", status)
            await response.write_eof()
            return response
        generation = self._generation
        cursor = since
        timeout = float(request.query.get("timeoutSeconds") or 30)
        deadline = asyncio.get_running_loop().time() + timeout
        api_version, kind, _ = KINDS[plural]
        while asyncio.get_running_loop().time() < deadline:
            if generation != self._generation:
                if self._clean_end:
                    await response.write_eof()
                elif request.transport is not None:
                    request.transport.close()  # the client sees the stream break, not end
                return response
            for version, p, ns, event_type, obj in list(self.events):
                if version > cursor and (p, ns) == (plural, namespace):
                    await send(event_type, obj)
            cursor = self.version
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), self._bookmark_interval)
            except TimeoutError:
                if bookmarks:
                    meta = {"resourceVersion": str(self.version)}
                    await send(
                        "BOOKMARK", {"apiVersion": api_version, "kind": kind, "metadata": meta}
                    )
        await response.write_eof()
        return response


def pod(name: str, ip: str, labels: dict[str, str], ready: bool = True) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [condition]},
    }


def inference_pool(name: str, labels: dict[str, str], ports: list[int]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {"name": f"{name}-epp", "port": {"number": 9002}},
        },
    }
