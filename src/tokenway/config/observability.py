"""The `observability:` section: Prometheus Operator monitors, Grafana dashboards, OTLP export."""

from __future__ import annotations

from pydantic import Field

from tokenway.config.base import Section
from tokenway.config.deployments import DNS_LABEL


class OtlpSettings(Section):
    """Where traces go (OTLP/gRPC). `sampleRatio` keeps that share of new traces (a caller's
    sampled `traceparent` is always followed): a span per request costs the gateway about a
    third of its throughput at full rate (benchmarks/tracing_overhead.py)."""

    endpoint: str = Field(min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class ObservabilitySettings(Section):
    """`prometheusUrl` is what the rendered KEDA triggers query."""

    pod_monitors: bool = True
    dashboards: bool = True
    namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    otlp: OtlpSettings | None = None
