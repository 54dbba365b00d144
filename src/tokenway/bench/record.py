"""What the client measured for one request: times on the run's monotonic clock, tokens, error."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

WARMUP_STAGE = -1
"""Stage index of warm-up requests: sent and written per request, left out of every summary."""


@dataclass(slots=True)
class RequestRecord:
    """Seconds since the run started; `token_times` holds the arrival time of each content chunk."""

    stage: int
    target: str
    group: str
    model: str
    scheduled: float
    start: float
    end: float = 0.0
    token_times: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens the server reported as served from its prefix cache."""
    error: str | None = None
    """The error kind (timeout, connection, http_429, protocol, ...); None on success."""
    error_message: str = ""
    status: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def schedule_delay(self) -> float:
        return self.start - self.scheduled

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.start if self.token_times else None

    @property
    def tpot(self) -> float | None:
        """(last token - first token) / (output tokens - 1), as inference-perf defines it."""
        if len(self.token_times) < 2 or self.output_tokens < 2:
            return None
        return (self.token_times[-1] - self.token_times[0]) / (self.output_tokens - 1)

    @property
    def ntpot(self) -> float:
        return self.latency / self.output_tokens if self.output_tokens else 0.0

    @property
    def itls(self) -> list[float]:
        times = self.token_times
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            latency=self.latency,
            schedule_delay=self.schedule_delay,
            time_to_first_token=self.ttft,
            time_per_output_token=self.tpot,
            normalized_time_per_output_token=self.ntpot,
        )
        return data
