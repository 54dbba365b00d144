"""A profile run as a `Scheduler`: filters, then weighted and clamped scorers, then a picker."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.plugin import Filter, Learner, Picker, Scorer
from tokenway.scheduling.request import Decision, SchedulingRequest
from tokenway.scheduling.scheduler import Outcome


@dataclass(frozen=True, slots=True)
class WeightedScorer:
    scorer: Scorer
    weight: float


@dataclass(frozen=True, slots=True)
class Profile:
    """A named, configured set of plugins."""

    name: str
    filters: tuple[Filter, ...]
    scorers: tuple[WeightedScorer, ...]
    picker: Picker


class ProfileScheduler:
    """Runs one profile; the only place where scores are clamped, weighted and ordered."""

    def __init__(self, profile: Profile, rng: random.Random | None = None) -> None:
        self.profile = profile
        self._rng = rng or random.Random()
        plugins = [*profile.filters, *(w.scorer for w in profile.scorers), profile.picker]
        self._learners = [p for p in plugins if isinstance(p, Learner)]

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        candidates: Sequence[EndpointSnapshot] = endpoints
        for plugin in self.profile.filters:
            candidates = plugin.filter(request, candidates)
            if not candidates:
                return Decision(endpoints=(), scores={} if explain else None)
        totals = [0.0] * len(candidates)
        explained: dict[str, dict[str, float]] | None = (
            {e.url: {} for e in candidates} if explain else None
        )
        for weighted in self.profile.scorers:
            raw = weighted.scorer.score(request, candidates, now)
            if len(raw) != len(candidates):
                raise ValueError(
                    f"scorer {weighted.scorer.type_name!r} returned {len(raw)} scores "
                    f"for {len(candidates)} endpoints"
                )
            # Clamp to [0, 1]; a NaN fails both comparisons and counts as the worst score.
            clamped = [1.0 if v > 1.0 else v if v > 0.0 else 0.0 for v in raw]
            weight = weighted.weight
            totals = [t + weight * v for t, v in zip(totals, clamped, strict=True)]
            if explained is not None:
                name = weighted.scorer.type_name
                for endpoint, value in zip(candidates, clamped, strict=True):
                    explained[endpoint.url][name] = value
        if explained is not None:
            for i, endpoint in enumerate(candidates):
                explained[endpoint.url]["total"] = totals[i]
        ordered = self.profile.picker.pick(candidates, totals, self._rng)
        if ordered:
            for learner in self._learners:
                learner.picked(request, ordered[0], now)
        return Decision(endpoints=tuple(ordered), scores=explained)

    def observe(self, outcome: Outcome) -> None:
        for learner in self._learners:
            learner.observe(outcome)
