"""The request context that every pipeline stage reads and fills in, whatever the data plane."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenway.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A request as a data plane received it, before any parsing."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Lower-case header names."""
    body: bytes
    peer: str = ""
    """The client's address."""
    peer_certificate_uris: tuple[str, ...] = ()
    """URI SANs of a verified mTLS client certificate (X.509-SVID), if any."""
    via_gateway: bool = False
    """A gateway in front owns the x-gateway-* request headers (the Envoy picker), so they are
    trusted; the standalone proxy takes them from clients and trusts them less."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a public model name goes: a pool and what to ask its servers for."""

    public_model: str
    pool: str
    upstream_model: str
    """The "model" sent to the server: the served model name, or the LoRA adapter name."""
    adapter: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one response, as the model server reported it (or as counted)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class RequestContext:
    """One request's state through the pipeline stages."""

    request_id: str
    operation: str
    """chat, completion or embedding (the OpenAI operation)."""
    inbound: InboundRequest
    body: dict[str, Any]
    received_at: float
    model: str
    """The public model name; pre-routing processors may change it."""
    stream: bool = False
    client_wants_usage: bool = False
    max_tokens: int | None = None
    prompt_text: str = ""
    prompt_tokens_estimate: int = 0
    fairness_id: str = "default-flow"
    principal: Principal | None = None
    route: Route | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    """Decisions made along the way (processors, policies), for the access log and debugging."""
    upstream_headers: dict[str, str] = field(default_factory=dict)
    """Headers that processors add to the request forwarded upstream (lower-case names)."""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.inbound.headers
