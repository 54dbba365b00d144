"""The picker's gRPC servers: ext_proc (with health) on one port, health alone on another."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2_grpc

from tokenway.gateway.extproc.health import PickerHealth
from tokenway.gateway.extproc.servicer import ExternalProcessor
from tokenway.gateway.pipeline import Pipeline

_OPTIONS = [
    ("grpc.max_receive_message_length", 8 * 2**20),
    ("grpc.max_concurrent_streams", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass(slots=True)
class EppServer:
    """A running picker; `stop` drains (readiness down) before closing the ports."""

    port: int
    health_port: int
    health: PickerHealth
    _servers: tuple[grpc.aio.Server, ...]

    async def stop(self, grace: float = 5.0, drain: float = 0.0) -> None:
        """Readiness down, wait `drain` seconds for Envoy's health checks to see it (new
        requests go to other replicas, or fail open), then let streams in flight finish for up
        to `grace` seconds. `stop(grace=0)` is a crash: streams in flight are cut."""
        await self.health.set_serving(False)
        if drain > 0:
            await asyncio.sleep(drain)
        for server in self._servers:
            await server.stop(grace)


def _bind(server: grpc.aio.Server, host: str, port: int) -> int:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return bound


async def start_epp(
    pipeline: Pipeline, listen: tuple[str, int], health_listen: tuple[str, int]
) -> EppServer:
    """Serve ext_proc (plus health) on `listen` and health alone on `health_listen`.

    Port 0 picks a free port; the bound ports are on the returned handle."""
    health = PickerHealth()
    main = grpc.aio.server(options=_OPTIONS)
    pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(pipeline), main)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, main)
    side = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, side)
    bound = _bind(main, *listen)
    bound_health = _bind(side, *health_listen)
    await main.start()
    await side.start()
    await health.set_serving(True)
    return EppServer(bound, bound_health, health, (main, side))
