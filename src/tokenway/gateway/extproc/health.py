"""gRPC health: `liveness`, `readiness` and the ext_proc service name, as the reference picker."""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

from tokenway.gateway.extproc.protocol import HEALTH_SERVICES

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PickerHealth:
    """Serving while the picker takes requests; NOT_SERVING while it drains, so Envoy moves on."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()

    async def set_serving(self, serving: bool) -> None:
        status = _SERVING if serving else _NOT_SERVING
        for service in ("", *HEALTH_SERVICES):
            # A draining picker is still alive: only readiness and the service go down.
            await self.servicer.set(service, _SERVING if service == "liveness" else status)
