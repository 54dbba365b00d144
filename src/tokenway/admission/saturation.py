"""The saturation detector: is the pool too busy to take more work right now?

Reference semantics: per endpoint max(waiting / queueDepth, kv_usage / kvCache); the pool's
saturation is the mean over its endpoints; >= 1 means saturated. An endpoint whose metrics are
older than `staleAfter` (or never scraped) counts as fully saturated, so a scraper outage makes
the gateway careful rather than blind. A pool with no endpoints is saturated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.config.pools import SaturationSpec
from tokenway.datalayer.endpoint import EndpointSnapshot


@dataclass(frozen=True, slots=True)
class SaturationDetector:
    spec: SaturationSpec

    def endpoint(self, endpoint: EndpointSnapshot) -> float:
        if endpoint.is_stale(self.spec.stale_after):
            return 1.0
        metrics = endpoint.metrics
        return max(metrics.waiting / self.spec.queue_depth, metrics.kv_usage / self.spec.kv_cache)

    def pool(self, endpoints: Sequence[EndpointSnapshot]) -> float:
        if not endpoints:
            return 1.0
        return sum(self.endpoint(e) for e in endpoints) / len(endpoints)

    def headroom_per_request(self, endpoints: Sequence[EndpointSnapshot]) -> float:
        """How much one more dispatched request adds to pool saturation before metrics show it:
        one more waiting request on one endpoint, averaged over the pool."""
        return 1.0 / (self.spec.queue_depth * max(1, len(endpoints)))
