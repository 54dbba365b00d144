"""One request of a workload, shared by the load generator, the simulator and the evaluations."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkloadRequest:
    """What to send and when, independent of how it is sent (HTTP or virtual time)."""

    arrival: float
    """Seconds from the start of the run (or of the stage)."""
    prompt: str = ""
    """Completion-style prompt text; used when `messages` is empty."""
    messages: tuple[dict[str, str], ...] = ()
    """Chat messages; when given, the request is a chat completion."""
    max_tokens: int = 128
    """Output tokens to generate (the simulator generates exactly this many unless stopped)."""
    model: str = ""
    """The model (or LoRA adapter) name to put in the request; empty means the target default."""
    tenant: str = "default"
    priority: int = 0
    group: str = ""
    """A label for reports: the shared-prefix group, the adapter, the conversation."""
    headers: dict[str, str] = field(default_factory=dict)
