"""The `observability:` section: Prometheus Operator monitors, Grafana dashboards, OTLP export."""

from __future__ import annotations

from pydantic import Field

from tokenway.config.base import Section
from tokenway.config.deployments import DNS_LABEL


class OtlpSettings(Section):
    endpoint: str = Field(min_length=1)


class ObservabilitySettings(Section):
    """`prometheusUrl` is what the rendered KEDA triggers query."""

    pod_monitors: bool = True
    dashboards: bool = True
    namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    otlp: OtlpSettings | None = None
