"""The `pools:` section: sets of model-server endpoints serving one base model."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from tokenway.config.base import Section
from tokenway.config.deployments import SERVICE_NAME
from tokenway.config.flow_control import FlowControlSpec
from tokenway.config.units import Duration
from tokenway.scheduling import profiles as scheduling_profiles
from tokenway.scheduling import registry as scheduling_registry

Engine = Literal["vllm", "sglang", "trtllm", "llamacpp", "openai"]


class SchedulerSpec(Section):
    """Which scheduling profile a pool uses; `scorers` overrides the profile's weights.

    `filters` and `picker` replace the profile's; `params` sets a plugin's parameters by type
    name. Names and parameters are checked against the scheduling registry (docs/scheduling.md).
    """

    profile: str = "default"
    scorers: dict[str, float] | None = None
    picker: str | None = None
    filters: list[str] | None = None
    params: dict[str, dict[str, Any]] | None = None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        scheduling_profiles.check_profile(value)
        return value

    @field_validator("scorers")
    @classmethod
    def _known_scorers(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for name, weight in (value or {}).items():
            scheduling_profiles.check_scorer_weight(name, weight)
        return value

    @field_validator("picker")
    @classmethod
    def _known_picker(cls, value: str | None) -> str | None:
        if value is not None:
            scheduling_registry.check_name(value, "picker")
        return value

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            scheduling_registry.check_name(name, "filter")
        return value

    @field_validator("params")
    @classmethod
    def _known_params(
        cls, value: dict[str, dict[str, Any]] | None
    ) -> dict[str, dict[str, Any]] | None:
        problems = []
        for name, params in (value or {}).items():
            plugin = scheduling_registry.PLUGINS.get(name)
            if plugin is None:
                problems.append(f"unknown plugin {name!r}")
                continue
            try:
                scheduling_registry.build_plugin(name, plugin.kind, params)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _builds(self) -> SchedulerSpec:
        scheduling_profiles.resolve(
            self.profile, self.scorers, self.picker, self.filters, self.params
        )
        return self


class SaturationSpec(Section):
    """Per-endpoint thresholds: saturated at max(queue/queueDepth, kv/kvCache) >= 1."""

    queue_depth: float = Field(default=5, gt=0)
    kv_cache: float = Field(default=0.8, gt=0, le=1)
    stale_after: Duration = 0.2
    """Metrics older than this make an endpoint count as fully saturated."""


class InferencePoolRef(Section):
    name: str
    namespace: str = "default"


class PoolSpec(Section):
    # Rendered as the Service `<name>-epp`: DNS-1035 and room for the suffix.
    name: str = Field(pattern=SERVICE_NAME, max_length=59)
    engine: Engine = "vllm"
    endpoints: list[str] = []
    inference_pool: InferencePoolRef | None = None
    scheduler: SchedulerSpec = SchedulerSpec()
    saturation: SaturationSpec = SaturationSpec()
    flow_control: FlowControlSpec = FlowControlSpec()

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        normalised = []
        for value in values:
            url = value if "://" in value else f"http://{value}"
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
                raise ValueError(f"{value!r} is not an http(s)://host:port endpoint")
            normalised.append(url.rstrip("/"))
        if len(set(normalised)) != len(normalised):
            raise ValueError("endpoints must be unique")
        return normalised
