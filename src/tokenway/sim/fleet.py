"""Several replicas in the current event loop: the embedded default's model-server fleet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.sim.faults import FaultConfig
from tokenway.sim.profiles import DEFAULT_MODEL, DEFAULT_PROFILE
from tokenway.sim.server import ReplicaConfig, SimServer

DEFAULT_LORAS = ("sql-lora", "chat-lora", "summarize-lora")


@dataclass(slots=True)
class Fleet:
    servers: list[SimServer]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()


async def start_fleet(
    replicas: int,
    host: str = "127.0.0.1",
    base_port: int = 0,
    model: str = DEFAULT_MODEL,
    loras: Sequence[str] = DEFAULT_LORAS,
    max_loras: int = 2,
    profile: str = DEFAULT_PROFILE,
    faults: Sequence[FaultConfig] = (),
) -> Fleet:
    """Start `replicas` simulated vLLM servers on host:base_port+i (0: free ports each).

    `faults[i]`, when given, is injected into replica i.
    """
    servers: list[SimServer] = []
    try:
        for i in range(replicas):
            config = ReplicaConfig(
                model=model,
                loras=tuple(loras),
                max_loras=max_loras,
                profile=profile,
                faults=faults[i] if i < len(faults) else FaultConfig(),
            )
            server = SimServer(config)
            servers.append(server)
            await server.start(host, base_port + i if base_port else 0)
    except BaseException:
        for server in servers:
            await server.stop()
        raise
    return Fleet(servers)
