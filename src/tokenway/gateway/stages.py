"""Narrow protocols for the pipeline stages that several implementations plug into.

The pipeline calls the stages in the order of ARCHITECTURE.md "One request, one pipeline"; a
stage raises `GatewayError` to reject, and never does I/O beyond its own store. Identity,
limits and processors have one implementation each (auth, admission.limits, processing) and
are used through those classes directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.context import RequestContext, Usage


class Authorizer(Protocol):
    def authorize(self, ctx: RequestContext) -> None:
        """Raises GatewayError(403) unless ctx.principal may use ctx.route for ctx.operation."""
        ...

    def lists_model(self, team: str, model: str) -> bool:
        """Whether GET /v1/models shows `model` to `team` (its allow-list; policies need a
        whole request and are checked when the model is used)."""
        ...


class Reservation(Protocol):
    """Tokens and slots held for one admitted request until it settles."""

    async def settle(self, usage: Usage | None) -> None:
        """Charge actual usage (None: nothing was generated) and release what was held."""
        ...

    def headers(self) -> dict[str, str]:
        """x-ratelimit-* headers to return with the response."""
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
