"""Named scheduling profiles and how a pool's `scheduler:` settings turn into a `Profile`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokenway.scheduling import registry
from tokenway.scheduling.framework import Profile, WeightedScorer
from tokenway.scheduling.scorers.prefill_cost import PrefillCostScorer
from tokenway.scheduling.scorers.prefix_cache import PrefixCacheScorer


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    filters: tuple[str, ...]
    scorers: Mapping[str, float]
    picker: str
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# Hard filters before health: panic routing (all unhealthy -> keep them) must only ever keep
# endpoints that can serve the request at all.
_FILTERS = ("subset", "model-served", "healthy")
_PREFIX_64 = {"blockSizeTokens": 64, "maxPrefixBlocks": 128}

PROFILES: Mapping[str, ProfileSpec] = MappingProxyType(
    {
        "round-robin": ProfileSpec(_FILTERS, {}, "round-robin"),
        "least-in-flight": ProfileSpec(_FILTERS, {"in-flight": 1}, "max-score"),
        # The reference endpoint picker's default weights, kept exact for comparisons.
        "default": ProfileSpec(
            _FILTERS, {"queue": 2, "kv-cache": 2, "prefix-cache": 3}, "max-score"
        ),
        # The reference weights plus tokenway's own scorers: adapter affinity, and the
        # prefill-cost estimate that stops prefix affinity from piling onto a busy replica
        # and spreads bursts of cold prompts by fresh, gateway-side backlog (the two share
        # one prefix index). 64-token blocks cost a quarter of the hashing for the same
        # 8k-token reach.
        "tokenway": ProfileSpec(
            _FILTERS,
            {"queue": 2, "kv-cache": 2, "prefix-cache": 3, "prefill-cost": 3, "lora-affinity": 5},
            "max-score",
            {"prefix-cache": _PREFIX_64, "prefill-cost": _PREFIX_64},
        ),
    }
)


def check_scorer_weight(scorer: str, weight: float) -> None:
    """ValueError unless `scorer` is a known scorer and `weight` a finite number >= 0."""
    registry.check_name(scorer, "scorer")
    if not weight >= 0 or math.isinf(weight):
        raise ValueError(f"scorer {scorer!r}: weight must be a number >= 0, got {weight}")


def check_profile(name: str) -> None:
    if name not in PROFILES:
        raise ValueError(f"unknown scheduling profile {name!r}; known: {', '.join(PROFILES)}")


def resolve(
    name: str,
    scorers: Mapping[str, float] | None = None,
    picker: str | None = None,
    filters: list[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Profile:
    """Build profile `name` with overrides: `scorers` weights replace the profile's per name
    (weight 0 removes a scorer), `picker` and `filters` replace the profile's, and `params`
    replace a plugin's parameters. ValueError on anything unknown."""
    check_profile(name)
    spec = PROFILES[name]
    weights = dict(spec.scorers)
    for scorer, weight in (scorers or {}).items():
        check_scorer_weight(scorer, weight)
        weights[scorer] = weight
    chosen_filters = list(spec.filters if filters is None else filters)
    chosen_picker = picker or spec.picker
    # Per key: overriding one parameter keeps the profile's others (its block size, say).
    merged = {
        plugin: {**spec.params.get(plugin, {}), **(params or {}).get(plugin, {})}
        for plugin in {*spec.params, *(params or {})}
    }
    used = {*chosen_filters, *(s for s, w in weights.items() if w > 0), chosen_picker}
    if unused := sorted(set(merged) - used):
        raise ValueError(f"params given for plugins the profile does not use: {unused}")
    scorers = {
        s: registry.build_plugin(s, "scorer", merged.get(s)) for s, w in weights.items() if w > 0
    }
    cost, prefix = scorers.get("prefill-cost"), scorers.get("prefix-cache")
    if isinstance(cost, PrefillCostScorer) and isinstance(prefix, PrefixCacheScorer):
        cost.share_prefix(prefix)
    return Profile(
        name=name,
        filters=tuple(registry.build_plugin(f, "filter", merged.get(f)) for f in chosen_filters),
        scorers=tuple(WeightedScorer(scorers[s], weights[s]) for s in scorers),
        picker=registry.build_plugin(chosen_picker, "picker", merged.get(chosen_picker)),
    )
