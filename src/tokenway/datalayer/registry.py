"""The gateway's book of endpoints: pools, scraped metrics, in-flight counts, health, readiness.

Pure bookkeeping over an injected clock; scrapers and the proxy report into it, decisions read
immutable snapshots out of it. An endpoint URL listed in several pools is one endpoint (one
server, one set of counts) seen from each pool. Reports about URLs that are no longer registered
(a request finishing after a reload removed its endpoint) are ignored.

Readiness: an endpoint is ready from the moment it is added (so a static fleet serves at once);
a failed scrape makes it unready until a scrape succeeds. Engines without metrics (`openai`) are
never scraped and rely on passive health alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot
from tokenway.datalayer.health import Health, HealthPolicy, PassiveHealth
from tokenway.datalayer.parsers import parser_for


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One endpoint's bookkeeping, for telemetry and admin views."""

    url: str
    engine: str
    health: Health
    ready: bool
    routable: bool
    """What snapshots report as `healthy`: ready, and not ejected (or admitted as the probe)."""
    in_flight: int
    metrics_age: float | None
    scrape_failures: int
    """Consecutive failed scrapes."""
    ejections: int


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Pool-wide figures for telemetry; means are over endpoints that have reported metrics."""

    endpoints: int
    routable: int
    reporting: int
    mean_queue: float
    mean_kv_usage: float
    in_flight: int


@dataclass(slots=True)
class _Endpoint:
    url: str
    engine: str
    metrics: EndpointMetrics = field(default_factory=EndpointMetrics)
    ready: bool = True
    scrape_failures: int = 0
    in_flight: int = 0
    in_flight_tokens: int = 0
    health: PassiveHealth = field(default_factory=PassiveHealth)

    @property
    def has_metrics(self) -> bool:
        return parser_for(self.engine).metrics_path is not None


SLOW_SCRAPES_TOLERATED = 3


class EndpointRegistry:
    """Pools of endpoints and everything the gateway knows about each endpoint."""

    def __init__(
        self, clock: Callable[[], float], health_policy: HealthPolicy | None = None
    ) -> None:
        self._clock = clock
        self._policy = health_policy or HealthPolicy()
        self._pools: dict[str, tuple[str, ...]] = {}
        self._endpoints: dict[str, _Endpoint] = {}

    # -- membership --------------------------------------------------------------------------

    def set_pool(self, pool: str, urls: Iterable[str], engine: str) -> None:
        """Make `urls` the pool's endpoints; kept endpoints keep their state.

        The seam for static config (on load and reload) and Kubernetes discovery. Changing an
        endpoint's engine resets its metrics and readiness, which belonged to the old engine.
        """
        parser_for(engine)
        wanted = tuple(dict.fromkeys(urls))
        for url in wanted:
            known = self._endpoints.get(url)
            if known is not None and known.engine != engine and self._in_other_pool(url, pool):
                raise ValueError(f"{url} is a {known.engine} endpoint in another pool")
        old = self._pools.get(pool, ())
        self._pools[pool] = wanted
        for url in wanted:
            known = self._endpoints.get(url)
            if known is None:
                self._endpoints[url] = _Endpoint(url, engine)
            elif known.engine != engine:
                known.engine = engine
                known.metrics = EndpointMetrics()
                known.ready = True
                known.scrape_failures = 0
        self._forget(set(old) - set(wanted))

    def remove_pool(self, pool: str) -> None:
        self._forget(set(self._pools.pop(pool, ())))

    def pools(self) -> list[str]:
        return list(self._pools)

    def scrape_targets(self) -> list[tuple[str, str]]:
        """(url, engine) of every registered endpoint, each once."""
        return [(endpoint.url, endpoint.engine) for endpoint in self._endpoints.values()]

    # -- what decisions read -----------------------------------------------------------------

    def snapshots(self, pool: str) -> list[EndpointSnapshot]:
        """The pool's endpoints as decisions see them now; an unknown pool has none."""
        now = self._clock()
        result = []
        for url in self._pools.get(pool, ()):
            endpoint = self._endpoints[url]
            scraped_at = endpoint.metrics.scraped_at
            never_ejected = endpoint.health.ejected_until is None  # the per-request fast path
            result.append(
                EndpointSnapshot(
                    url=url,
                    pool=pool,
                    metrics=endpoint.metrics,
                    # A server without metrics (plain OpenAI) has nothing that could go stale.
                    metrics_age=(
                        0.0
                        if not endpoint.has_metrics
                        else None
                        if scraped_at is None
                        else now - scraped_at
                    ),
                    healthy=endpoint.ready if never_ejected else self._routable(endpoint, now),
                    in_flight=endpoint.in_flight,
                    in_flight_tokens=endpoint.in_flight_tokens,
                )
            )
        return result

    # -- in-flight accounting (the proxy, around each upstream attempt) -----------------------

    def acquire(self, url: str, tokens: int = 0) -> float:
        """A request is being sent to `url`; returns when, to hand back on release and report."""
        now = self._clock()
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            endpoint.in_flight += 1
            endpoint.in_flight_tokens += tokens
            endpoint.health.sent(now)
        return now

    def release(self, url: str, tokens: int, started: float) -> None:
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            endpoint.in_flight = max(0, endpoint.in_flight - 1)
            endpoint.in_flight_tokens = max(0, endpoint.in_flight_tokens - tokens)
            endpoint.health.ended(started)

    # -- scrapes -----------------------------------------------------------------------------

    def update_metrics(self, url: str, metrics: EndpointMetrics) -> None:
        """A successful scrape: stamps it with the clock and makes the endpoint ready."""
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            endpoint.metrics = replace(metrics, scraped_at=self._clock())
            endpoint.ready = True
            endpoint.scrape_failures = 0

    def scrape_failed(self, url: str, slow: bool = False) -> bool:
        """A failed scrape makes the endpoint unready; True when it was ready until now.

        A `slow` failure (the scrape timed out) only does so after SLOW_SCRAPES_TOLERATED in a
        row: a server busy with a burst answers /metrics late but still serves, and its stale
        metrics already make admission careful. Refused connections and errors count at once.
        """
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            return False
        endpoint.scrape_failures += 1
        was_ready = endpoint.ready
        if not slow or endpoint.scrape_failures >= SLOW_SCRAPES_TOLERATED:
            endpoint.ready = False
        return was_ready and not endpoint.ready

    # -- passive health (the proxy, after each upstream attempt) -----------------------------

    def report_success(self, url: str, started: float) -> None:
        """The request sent at `started` (from `acquire`) was answered."""
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            endpoint.health.success(self._clock(), started)

    def report_failure(self, url: str, started: float) -> None:
        """A connect error, 5xx or timeout from the endpoint for the request sent at `started`."""
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            endpoint.health.failure(self._clock(), started, self._policy)

    # -- telemetry ---------------------------------------------------------------------------

    def statuses(self, pool: str) -> list[EndpointStatus]:
        now = self._clock()
        result = []
        for url in self._pools.get(pool, ()):
            endpoint = self._endpoints[url]
            scraped_at = endpoint.metrics.scraped_at
            result.append(
                EndpointStatus(
                    url=url,
                    engine=endpoint.engine,
                    health=endpoint.health.state(now),
                    ready=endpoint.ready,
                    routable=self._routable(endpoint, now),
                    in_flight=endpoint.in_flight,
                    # A server without metrics (plain OpenAI) has nothing that could go stale.
                    metrics_age=(
                        0.0
                        if not endpoint.has_metrics
                        else None
                        if scraped_at is None
                        else now - scraped_at
                    ),
                    scrape_failures=endpoint.scrape_failures,
                    ejections=endpoint.health.ejections,
                )
            )
        return result

    def pool_stats(self, pool: str) -> PoolStats:
        now = self._clock()
        endpoints = [self._endpoints[url] for url in self._pools.get(pool, ())]
        reporting = [e.metrics for e in endpoints if e.metrics.scraped_at is not None]
        count = len(reporting)
        return PoolStats(
            endpoints=len(endpoints),
            routable=sum(self._routable(e, now) for e in endpoints),
            reporting=count,
            mean_queue=sum(m.waiting for m in reporting) / count if count else 0.0,
            mean_kv_usage=sum(m.kv_usage for m in reporting) / count if count else 0.0,
            in_flight=sum(e.in_flight for e in endpoints),
        )

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _routable(endpoint: _Endpoint, now: float) -> bool:
        if not endpoint.ready:
            return False
        return endpoint.health.admits(now)

    def _in_other_pool(self, url: str, pool: str) -> bool:
        return any(url in urls for name, urls in self._pools.items() if name != pool)

    def _forget(self, urls: set[str]) -> None:
        in_use = {url for urls in self._pools.values() for url in urls}
        for url in urls - in_use:
            del self._endpoints[url]
