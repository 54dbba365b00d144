"""One request inside the simulated engine: a slots dataclass the scheduler mutates."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from tokenway.sim.tokenizer import TOKEN_BYTES


class Status(IntEnum):
    WAITING = 0
    RUNNING = 1
    FINISHED = 2


@dataclass(slots=True, eq=False)
class SimRequest:
    request_id: str
    prompt: bytes
    """Prompt token bytes (see tokenizer)."""
    max_tokens: int
    """Output tokens this request will generate unless max_model_len stops it first."""
    arrival: float
    """When the server received it (TTFT and e2e are measured from here)."""
    lora: str | None = None
    finish_reason_at_max: str = "length"
    """"length" when the client's max_tokens ends it, "stop" when it is the natural answer end."""
    seed: int = 0
    requested_max_tokens: int | None = None
    tokens: bytearray = field(default_factory=bytearray)
    num_prompt_tokens: int = 0
    num_output: int = 0
    num_computed: int = 0
    num_cached_tokens: int | None = None
    """Prompt tokens served from the prefix cache at first scheduling."""
    blocks: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)
    num_cached_blocks: int = 0
    """Leading blocks already registered in the prefix-hash map."""
    status: Status = Status.WAITING
    queued_at: float = 0.0
    scheduled_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float = 0.0
    finished_at: float | None = None
    finish_reason: str | None = None
    num_preemptions: int = 0
    decoding: bool = False
    """In the engine's decode set: num_output and num_computed lag by the set's progress."""
    decode_joined: int = 0
    decode_x: int = 0
    decode_epoch: int = 0

    def __post_init__(self) -> None:
        self.tokens = bytearray(self.prompt)
        self.num_prompt_tokens = len(self.prompt) // TOKEN_BYTES

    @property
    def num_tokens(self) -> int:
        return self.num_prompt_tokens + self.num_output
