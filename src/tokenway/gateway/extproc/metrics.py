"""The picker's Prometheus endpoint on its own port (as the reference picker's 9090)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tokenway.gateway.gateway import Gateway


async def serve_metrics(gateway: Gateway, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve GET /metrics; returns the runner (call cleanup()) and the bound port."""

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(gateway.metrics.registry)
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
