"""The `pools:` section: sets of model-server endpoints serving one base model."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from tokenway.config.base import Section

Engine = Literal["vllm", "sglang", "trtllm", "llamacpp", "openai"]


class SchedulerSpec(Section):
    """Which scheduling profile a pool uses; `scorers` overrides the profile's weights."""

    profile: str = "default"
    scorers: dict[str, float] | None = None
    picker: str | None = None


class SaturationSpec(Section):
    """Per-endpoint thresholds: saturated at max(queue/queueDepth, kv/kvCache) >= 1."""

    queue_depth: float = Field(default=5, gt=0)
    kv_cache: float = Field(default=0.8, gt=0, le=1)


class InferencePoolRef(Section):
    name: str
    namespace: str = "default"


class PoolSpec(Section):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    engine: Engine = "vllm"
    endpoints: list[str] = []
    inference_pool: InferencePoolRef | None = None
    scheduler: SchedulerSpec = SchedulerSpec()
    saturation: SaturationSpec = SaturationSpec()

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
