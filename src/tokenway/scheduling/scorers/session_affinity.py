"""`session-affinity` scorer: send a session back to the endpoint that served it last.

Score 1 for that endpoint, 0 elsewhere (and 0 everywhere without a session id). Multi-turn
conversations then reuse the KV cache of earlier turns even when their text was rewritten.
Remembers the most recent `maxSessions` sessions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from tokenway.config.base import Section
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.params import parse_params
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome

TYPE = "session-affinity"


class SessionAffinityParams(Section):
    max_sessions: int = Field(default=100_000, ge=1)


class SessionAffinityScorer:
    type_name = TYPE

    def __init__(self, params: SessionAffinityParams) -> None:
        self._max = params.max_sessions
        self._last: OrderedDict[str, str] = OrderedDict()

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        url = self._last.get(request.session_id) if request.session_id else None
        return [1.0 if e.url == url else 0.0 for e in endpoints]

    def picked(self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float) -> None:
        self._remember(request.session_id, endpoint.url)

    def observe(self, outcome: Outcome) -> None:
        """A fallback that served after the pick failed holds the session's cache now."""
        session = outcome.request.session_id
        if outcome.ok and session is not None and self._last.get(session) != outcome.endpoint_url:
            self._remember(session, outcome.endpoint_url)

    def _remember(self, session: str | None, url: str) -> None:
        if session is None:
            return
        self._last[session] = url
        self._last.move_to_end(session)
        if len(self._last) > self._max:
            self._last.popitem(last=False)


def build(params: Mapping[str, Any] | None) -> SessionAffinityScorer:
    return SessionAffinityScorer(parse_params(TYPE, SessionAffinityParams, params))
