"""The seam between data planes (gateway, picker, virtual-time simulator) and scheduling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.request import Decision, SchedulingRequest


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a scheduled request, fed back so stateful plugins can learn."""

    request: SchedulingRequest
    endpoint_url: str
    ok: bool
    prompt_tokens: int = 0
    cached_tokens: int | None = None
    """prompt_tokens_details.cached_tokens from the server's usage, when it reports it."""
    output_tokens: int = 0
    now: float = 0.0


class Scheduler(Protocol):
    """Chooses endpoints for a request from snapshots; pure apart from its own learned state."""

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        """Order the eligible endpoints; an empty Decision means nothing can serve it."""
        ...

    def observe(self, outcome: Outcome) -> None:
        """Learn from a finished request (prefix index, latency estimates)."""
        ...
