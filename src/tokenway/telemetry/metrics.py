"""Gateway metrics: OpenTelemetry GenAI names plus tokenway_* series, on a given registry.

Prometheus names follow the GenAI semantic conventions with dots as underscores
(gen_ai.client.token.usage -> gen_ai_client_token_usage). Label values stay bounded: model
names come from the configuration, never from unresolved client input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tokenway.gateway.context import RequestContext
from tokenway.sim.stats import TTFT_BUCKETS as VLLM_TTFT_BUCKETS

if TYPE_CHECKING:
    from tokenway.datalayer.registry import EndpointRegistry
    from tokenway.gateway.pipeline import ForwardOutcome

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# vLLM's own boundaries up to 10 s: gateway and model-server TTFT histograms line up in Grafana.
TTFT_BUCKETS = tuple(b for b in VLLM_TTFT_BUCKETS if b <= 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


class _PoolCollector(Collector):
    """Pool and endpoint gauges read from the registry at scrape time, never stale."""

    def __init__(self, registry: EndpointRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[GaugeMetricFamily]:
        queue = GaugeMetricFamily(
            "tokenway_pool_average_queue_size",
            "Mean waiting requests per endpoint",
            labels=["pool"],
        )
        kv = GaugeMetricFamily(
            "tokenway_pool_average_kv_cache_utilization",
            "Mean KV-cache utilisation (0..1) per endpoint",
            labels=["pool"],
        )
        healthy = GaugeMetricFamily(
            "tokenway_endpoint_healthy",
            "1 if the endpoint takes traffic",
            labels=["pool", "endpoint"],
        )
        for pool in self._registry.pools():
            stats = self._registry.pool_stats(pool)
            queue.add_metric([pool], stats.mean_queue)
            kv.add_metric([pool], stats.mean_kv_usage)
            for snapshot in self._registry.snapshots(pool):
                healthy.add_metric([pool, snapshot.url], 1.0 if snapshot.healthy else 0.0)
        yield queue
        yield kv
        yield healthy


class GatewayMetrics:
    """The gateway's request metrics; one instance per gateway, registry injected."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        op, model = "gen_ai_operation_name", "gen_ai_request_model"
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request by type",
            [op, model, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token",
            "Seconds to the first output token",
            [op, model],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token",
            "Seconds per output token after the first",
            [op, model],
            buckets=TPOT_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration",
            "Seconds from request to last byte",
            [op, model, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "tokenway_requests",
            "Requests by public model, pool and status",
            ["model", "pool", "status"],
            registry=registry,
        )
        self.retries = Counter(
            "tokenway_retries",
            "Requests retried on a fallback endpoint",
            ["pool"],
            registry=registry,
        )
        self.overhead = Histogram(
            "tokenway_proxy_overhead_seconds",
            "Time spent in the gateway before the request left for the model server",
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.config_reloads = Counter(
            "tokenway_config_reloads",
            "Configuration reloads by result",
            ["result"],
            registry=registry,
        )

    def watch_pools(self, endpoints: EndpointRegistry) -> None:
        self.registry.register(_PoolCollector(endpoints))

    def rejected(self, ctx: RequestContext, status: int) -> None:
        pool = ctx.route.pool if ctx.route else ""
        model = ctx.route.public_model if ctx.route else ""
        self.requests.labels(model, pool, str(status)).inc()

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        # labels() hashes and takes a lock on every call; children are looked up once.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def completed(self, ctx: RequestContext, outcome: ForwardOutcome, duration: float) -> None:
        route = ctx.route
        assert route is not None
        op, model = ctx.operation, route.public_model
        ok = outcome.status < 400 and not outcome.error
        self._child(self.requests, model, route.pool, str(outcome.status)).inc()
        self._child(self.duration, op, model, "" if ok else str(outcome.status)).observe(duration)
        if outcome.retries:
            self._child(self.retries, route.pool).inc(outcome.retries)
        if outcome.usage is not None:
            self._child(self.token_usage, op, model, "input").observe(outcome.usage.prompt_tokens)
            self._child(self.token_usage, op, model, "output").observe(
                outcome.usage.completion_tokens
            )
        if outcome.ttft is not None:
            self._child(self.ttft, op, model).observe(outcome.ttft)
        if outcome.time_per_output_token is not None:
            self._child(self.tpot, op, model).observe(outcome.time_per_output_token)
