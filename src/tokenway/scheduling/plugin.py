"""The plugin interfaces of a scheduling profile: one method each, plus a type name.

Filters drop endpoints that cannot serve a request, scorers rate the rest in [0, 1], a picker
orders them. Plugins never clamp, weight, sort or time anything: `framework.ProfileScheduler`
does that once for all of them. Plugins that learn implement `Learner` as well.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.request import SchedulingRequest
from tokenway.scheduling.scheduler import Outcome


class Filter(Protocol):
    type_name: str

    def filter(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot]
    ) -> list[EndpointSnapshot]:
        """The endpoints that may serve the request, in the given order."""
        ...


class Scorer(Protocol):
    type_name: str

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> Sequence[float]:
        """One score per endpoint, in order; higher is better, meant to lie in [0, 1].

        `now` is the decision's clock time, for scorers whose state ages."""
        ...


class Picker(Protocol):
    type_name: str

    def pick(
        self, endpoints: Sequence[EndpointSnapshot], totals: Sequence[float], rng: random.Random
    ) -> list[EndpointSnapshot]:
        """All endpoints ordered best first (primary, then fallbacks) from weighted totals."""
        ...


@runtime_checkable
class Learner(Protocol):
    """A stateful plugin: told where each request went and how it went."""

    def picked(
        self, request: SchedulingRequest, endpoint: EndpointSnapshot, now: float
    ) -> None: ...

    def observe(self, outcome: Outcome) -> None: ...
