"""What the gateway knows about one model-server endpoint, as immutable snapshots.

Scrapers produce `EndpointMetrics`; the registry combines them with the gateway's own
bookkeeping (health, in-flight counts) into `EndpointSnapshot`s, which is all a scheduling
decision ever sees. Snapshots are copies: deciding never touches live state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class EndpointMetrics:
    """Model Server Protocol signals read from one scrape of an endpoint's /metrics."""

    waiting: int = 0
    running: int = 0
    kv_usage: float = 0.0
    block_size: int | None = None
    num_blocks: int | None = None
    max_loras: int = 0
    running_loras: frozenset[str] = frozenset()
    waiting_loras: frozenset[str] = frozenset()
    prefix_cache_queries: float = 0.0
    prefix_cache_hits: float = 0.0
    scraped_at: float | None = None
    """Clock time of the scrape; None until the first successful scrape."""


@dataclass(frozen=True, slots=True)
class EndpointSnapshot:
    """One endpoint as a decision sees it at `now`."""

    url: str
    pool: str
    metrics: EndpointMetrics = field(default_factory=EndpointMetrics)
    metrics_age: float | None = None
    """Seconds since the last successful scrape at decision time; None if never scraped."""
    healthy: bool = True
    in_flight: int = 0
    in_flight_tokens: int = 0
    served_models: frozenset[str] = frozenset()
    """Models and adapters the endpoint reports serving; empty means unknown (assume all)."""

    @property
    def address(self) -> str:
        """host:port, the form the Endpoint Picker Protocol uses."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port}"

    def is_stale(self, max_age: float) -> bool:
        return self.metrics_age is None or self.metrics_age > max_age
