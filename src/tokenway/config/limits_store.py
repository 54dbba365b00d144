"""The `limitsStore:` section: where limit counters live and how admission estimates usage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tokenway.config.base import Section
from tokenway.config.units import Duration


class EstimateSettings(Section):
    """A request is admitted as if it used promptFactor x its prompt estimate plus its max_tokens
    (defaultMaxTokens when the client sends none); the real usage replaces it when it ends."""

    prompt_factor: float = Field(default=1.0, gt=0, le=10)
    default_max_tokens: int = Field(default=1024, ge=1)


class LimitsStoreSettings(Section):
    """In memory (one replica) when `redis` is unset; a Redis URL shares limits across replicas."""

    redis: str | None = None
    on_unavailable: Literal["fail-open", "fail-closed"] = "fail-open"
    timeout: Duration = 0.25
    key_prefix: str = Field(default="tokenway", pattern=r"^[-_.:A-Za-z0-9]+$")
    lease: Duration = 900.0
    """How long a concurrency slot outlives a replica that died without releasing it."""
    estimate: EstimateSettings = EstimateSettings()
