"""The picker's Prometheus endpoint on its own port (as the reference picker's 9090)."""

from __future__ import annotations

from aiohttp import web

from tokenway.gateway.gateway import Gateway
from tokenway.gateway.server import GatewayApp


async def serve_metrics(gateway: Gateway, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve GET /metrics; returns the runner (call cleanup()) and the bound port."""
    app = web.Application()
    app.router.add_get("/metrics", GatewayApp(gateway).metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])
