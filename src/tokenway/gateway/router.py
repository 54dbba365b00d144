"""Stage 4, resolve route: a public model name -> pool, upstream model or adapter, priority."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.config.models import ModelSpec
from tokenway.gateway.context import Route
from tokenway.gateway.errors import GatewayError


@dataclass(frozen=True, slots=True)
class _Choice:
    cumulative: int
    route: Route


def canonical_model_name(name: str) -> str:
    """Case- and unicode-insensitive form, so look-alike spellings resolve to one model."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


class ModelRouter:
    """Weighted rewrite of public model names (canary / A-B) into routes; pure given an rng."""

    def __init__(self, models: Sequence[ModelSpec]) -> None:
        self._table: dict[str, tuple[int, list[_Choice]]] = {}
        for spec in models:
            total, choices = 0, []
            for target in spec.resolved_targets():
                if target.weight == 0:
                    continue
                total += target.weight
                upstream = target.adapter if target.adapter is not None else target.model
                assert upstream is not None
                route = Route(spec.name, spec.pool, upstream, target.adapter, spec.priority)
                choices.append(_Choice(total, route))
            self._table[canonical_model_name(spec.name)] = (total, choices)
        self.public_names = [spec.name for spec in models]

    def resolve(self, model: str, rng: random.Random) -> Route:
        entry = self._table.get(canonical_model_name(model))
        if entry is None:
            raise GatewayError(
                404, f"The model `{model}` does not exist.", code="model_not_found", param="model"
            )
        total, choices = entry
        if len(choices) == 1:
            return choices[0].route
        ticket = rng.randrange(total)
        return next(c.route for c in choices if ticket < c.cumulative)
