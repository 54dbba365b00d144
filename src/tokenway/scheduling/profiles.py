"""Named scheduling profiles and how a pool's `scheduler:` settings turn into a `Profile`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokenway.scheduling import registry
from tokenway.scheduling.framework import Profile, WeightedScorer


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    filters: tuple[str, ...]
    scorers: Mapping[str, float]
    picker: str
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_FILTERS = ("subset", "healthy", "model-served")

PROFILES: Mapping[str, ProfileSpec] = MappingProxyType(
    {
        "round-robin": ProfileSpec(_FILTERS, {}, "round-robin"),
        "least-in-flight": ProfileSpec(_FILTERS, {"in-flight": 1}, "max-score"),
        # The reference endpoint picker's default weights, kept exact for comparisons.
        "default": ProfileSpec(
            _FILTERS, {"queue": 2, "kv-cache": 2, "prefix-cache": 3}, "max-score"
        ),
        "tokenway": ProfileSpec(
            (*_FILTERS, "load-guard"),
            {"prefix-cache": 3, "lora-affinity": 2, "in-flight": 2, "queue": 1, "kv-cache": 1},
            "max-score",
            # 64-token blocks: a quarter of the hashing, the same 8k-token reach, finer than
            # any shared prefix worth routing for.
            {"prefix-cache": {"learn": True, "blockSizeTokens": 64, "maxPrefixBlocks": 128}},
        ),
    }
)


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
        registry.check_name(scorer, "scorer")
        if weight < 0:
            raise ValueError(f"scorer {scorer!r}: weight must be >= 0, got {weight}")
        weights[scorer] = weight
    chosen_filters = list(spec.filters if filters is None else filters)
    chosen_picker = picker or spec.picker
    merged = {**spec.params, **(params or {})}
    used = {*chosen_filters, *(s for s, w in weights.items() if w > 0), chosen_picker}
    if unused := sorted(set(merged) - used):
        raise ValueError(f"params given for plugins the profile does not use: {unused}")
    return Profile(
        name=name,
        filters=tuple(registry.build_plugin(f, "filter", merged.get(f)) for f in chosen_filters),
        scorers=tuple(
            WeightedScorer(registry.build_plugin(s, "scorer", merged.get(s)), w)
            for s, w in weights.items()
            if w > 0
        ),
        picker=registry.build_plugin(chosen_picker, "picker", merged.get(chosen_picker)),
    )
