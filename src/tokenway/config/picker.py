"""The `picker:` section: the endpoint picker behind Envoy (ports, failure mode, body mode)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tokenway.config.base import Section
from tokenway.config.units import Duration


class PickerSettings(Section):
    """Defaults follow the reference picker: ext_proc 9002, health 9003, metrics 9090.

    `failureMode` is InferencePool's endpointPickerRef.failureMode: FailOpen lets Envoy pick an
    endpoint itself while the picker is unreachable, FailClose fails those requests.
    `requestBodyMode` is how Envoy hands the request body over: BUFFERED (whole, after the
    headers were answered) or FULL_DUPLEX_STREAMED (chunks as they arrive, the reference
    picker's mode). Envoy cannot fail open once it has streamed a body away, so FailOpen
    needs BUFFERED. `messageTimeout` bounds Envoy's wait for each picker answer, including the
    time a request waits in a flow-control queue, so it must outlast every pool's queueTtl.
    """

    listen: str = "127.0.0.1:9002"
    health_listen: str = "127.0.0.1:9003"
    metrics_listen: str = "127.0.0.1:9090"
    failure_mode: Literal["FailOpen", "FailClose"] = "FailOpen"
    request_body_mode: Literal["BUFFERED", "FULL_DUPLEX_STREAMED"] = "BUFFERED"
    message_timeout: Duration = 60.0
    envoy_admin_port: int = Field(default=19000, ge=0, le=65535)

    @field_validator("listen", "health_listen", "metrics_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _fail_open_needs_buffered(self) -> PickerSettings:
        if self.failure_mode == "FailOpen" and self.request_body_mode != "BUFFERED":
            raise ValueError(
                "failureMode FailOpen needs requestBodyMode BUFFERED: Envoy cannot fail open "
                "once it has streamed the request body to the picker"
            )
        return self
