"""Every scheduling plugin type by name, registered explicitly here and nowhere else.

Stability: "stable" plugins reproduce the reference scheduler; "beta" ones are tokenway's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from tokenway.scheduling.filters import healthy, load_guard, model_served, subset
from tokenway.scheduling.pickers import max_score, round_robin, weighted_random
from tokenway.scheduling.scorers import (
    in_flight,
    in_flight_tokens,
    kv_cache,
    lora_affinity,
    prefill_cost,
    prefix_cache,
    queue,
    session_affinity,
)

Kind = Literal["filter", "scorer", "picker"]


@dataclass(frozen=True, slots=True)
class PluginType:
    kind: Kind
    build: Callable[[Mapping[str, Any] | None], Any]
    stability: Literal["stable", "beta"]


PLUGINS: Mapping[str, PluginType] = MappingProxyType(
    {
        healthy.TYPE: PluginType("filter", healthy.build, "stable"),
        model_served.TYPE: PluginType("filter", model_served.build, "stable"),
        subset.TYPE: PluginType("filter", subset.build, "stable"),
        load_guard.TYPE: PluginType("filter", load_guard.build, "beta"),
        queue.TYPE: PluginType("scorer", queue.build, "stable"),
        kv_cache.TYPE: PluginType("scorer", kv_cache.build, "stable"),
        prefix_cache.TYPE: PluginType("scorer", prefix_cache.build, "stable"),
        lora_affinity.TYPE: PluginType("scorer", lora_affinity.build, "stable"),
        in_flight.TYPE: PluginType("scorer", in_flight.build, "stable"),
        in_flight_tokens.TYPE: PluginType("scorer", in_flight_tokens.build, "beta"),
        prefill_cost.TYPE: PluginType("scorer", prefill_cost.build, "beta"),
        session_affinity.TYPE: PluginType("scorer", session_affinity.build, "beta"),
        max_score.TYPE: PluginType("picker", max_score.build, "stable"),
        weighted_random.TYPE: PluginType("picker", weighted_random.build, "stable"),
        round_robin.TYPE: PluginType("picker", round_robin.build, "stable"),
    }
)


def names(kind: Kind) -> list[str]:
    return sorted(name for name, plugin in PLUGINS.items() if plugin.kind == kind)


def check_name(name: str, kind: Kind) -> None:
    """ValueError listing the known names when `name` is not a registered `kind`."""
    plugin = PLUGINS.get(name)
    if plugin is None or plugin.kind != kind:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(names(kind))}")


def build_plugin(name: str, kind: Kind, params: Mapping[str, Any] | None) -> Any:
    """A new instance of plugin `name`; ValueError on an unknown name or bad params."""
    check_name(name, kind)
    return PLUGINS[name].build(params)
