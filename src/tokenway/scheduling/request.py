"""The inputs and output of one scheduling decision: plain values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tokenway.datalayer.endpoint import EndpointSnapshot


@dataclass(frozen=True, slots=True)
class SchedulingRequest:
    """The features of a request that scheduling may look at."""

    request_id: str
    model: str
    """The model name sent upstream (after rewrite); for a LoRA request the adapter name."""
    base_model: str | None = None
    adapter: str | None = None
    prompt: str = ""
    """The prompt as text (chat messages serialised), for prefix matching."""
    prompt_tokens: int = 0
    """An estimate of the prompt length in tokens."""
    max_tokens: int | None = None
    priority: int = 0
    fairness_id: str = "default-flow"
    session_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    subset: frozenset[str] | None = None
    """Endpoint addresses (host:port) the data plane allows; None means no restriction."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Ordered endpoints: the primary first, then fallbacks to try before the first byte."""

    endpoints: tuple[EndpointSnapshot, ...]
    scores: Mapping[str, Mapping[str, float]] | None = None
    """Per endpoint URL, per scorer name: the weighted-in score, when explaining was asked for."""

    @property
    def primary(self) -> EndpointSnapshot | None:
        return self.endpoints[0] if self.endpoints else None
