"""Envoy as the data plane of an embedded gateway: a local picker plus an Envoy in front of it."""

from __future__ import annotations

from dataclasses import dataclass

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.extproc.bootstrap import PickerAddress, envoy_bootstrap
from tokenway.gateway.extproc.envoy import EnvoyProcess
from tokenway.gateway.extproc.server import EppServer, start_epp
from tokenway.gateway.gateway import Gateway


@dataclass(slots=True)
class EnvoyDataplane:
    """A running Envoy and the picker it calls; `url` is where clients send requests."""

    envoy: EnvoyProcess
    picker: EppServer
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Envoy first, so no request reaches a picker that is gone."""
        await self.envoy.stop()
        await self.picker.stop()


async def start_envoy_dataplane(
    config: PlatformConfig,
    gateway: Gateway,
    port: int,
    *,
    host: str = "127.0.0.1",
    endpoints: list[str] | None = None,
) -> EnvoyDataplane:
    """Serve `gateway` (already started) through Envoy on host:port (port 0: any free one).

    The picker listens on free local ports; `endpoints` (model-server URLs) defaults to every
    pool's endpoints in `config`. The caller stops the returned handle, then the gateway.
    """
    picker = await start_epp(gateway.pipeline, ("127.0.0.1", 0), ("127.0.0.1", 0))
    try:
        bootstrap = envoy_bootstrap(
            config,
            listen=(host, port),
            admin_port=0,
            pickers=[PickerAddress("127.0.0.1", picker.port, picker.health_port)],
            endpoints=endpoints,
        )
        envoy = await EnvoyProcess.start(bootstrap)
    except BaseException:
        await picker.stop(grace=0)
        raise
    dataplane = EnvoyDataplane(envoy, picker, host, port)
    try:
        dataplane.port = await envoy.listener_port(
            bootstrap["static_resources"]["listeners"][0]["name"]
        )
    except BaseException:
        await dataplane.stop()
        raise
    return dataplane
