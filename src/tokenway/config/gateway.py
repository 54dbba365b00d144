"""The `gateway:` section: listener, body limit, timeouts and retries of the data plane."""

from __future__ import annotations

from pydantic import Field, field_validator

from tokenway.config.base import Section
from tokenway.config.tls import TlsSettings
from tokenway.config.units import ByteSize, Duration


class Timeouts(Section):
    connect: Duration = 2.0
    first_byte: Duration = 60.0
    idle: Duration = 120.0


class Retries(Section):
    before_first_byte: int = Field(default=2, ge=0, le=10)


class GatewaySettings(Section):
    listen: str = "127.0.0.1:8080"
    max_request_bytes: ByteSize = 32 * 2**20
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    metrics_interval: Duration = 0.05
    access_log: bool = True
    tls: TlsSettings | None = None

    @field_validator("metrics_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
