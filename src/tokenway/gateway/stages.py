"""The pluggable stages of the pipeline: one narrow protocol each.

The pipeline calls them in the order of ARCHITECTURE.md "One request, one pipeline". Each
packages' implementation is built from the platform file by `gateway.factory`; a stage raises
`GatewayError` to reject, and never does I/O beyond its own store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tokenway.auth.principal import Principal
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.context import InboundRequest, RequestContext, Usage


class Authenticator(Protocol):
    def authenticate(self, request: InboundRequest) -> Principal:
        """The caller's principal; raises GatewayError(401) when credentials are missing or bad."""
        ...


class Authorizer(Protocol):
    def authorize(self, ctx: RequestContext) -> None:
        """Raises GatewayError(403) unless ctx.principal may use ctx.route for ctx.operation."""
        ...


class Reservation(Protocol):
    """Tokens and slots held for one admitted request until it settles."""

    async def settle(self, usage: Usage | None) -> None:
        """Charge actual usage (None: nothing was generated) and release what was held."""
        ...

    def headers(self) -> dict[str, str]:
        """x-ratelimit-* headers to return with the response."""
        ...


class Limiter(Protocol):
    async def reserve(self, ctx: RequestContext) -> Reservation:
        """Admit against limits and budgets; raises GatewayError(429) with Retry-After."""
        ...


class ProcessorChain(Protocol):
    async def run(self, phase: str, ctx: RequestContext) -> None:
        """Run the processors of a phase ("pre-routing" or "request") in order on ctx."""
        ...


class AdmissionTicket(Protocol):
    def release(self) -> None:
        """The request no longer occupies a dispatch slot."""
        ...


class Admission(Protocol):
    async def admit(
        self, ctx: RequestContext, endpoints: Sequence[EndpointSnapshot]
    ) -> AdmissionTicket:
        """Shed (429), queue (503 on TTL) or pass a request given its pool's endpoints."""
        ...
