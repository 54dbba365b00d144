"""Processor metrics on the registry the gateway passes in: latency, decisions, findings."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram

_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "tokenway_processor_duration_seconds",
            "CPU time of one payload processor call (they run inline and never wait).",
            ["processor", "phase"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "tokenway_processor_decisions_total",
            "Payload processor decisions by outcome.",
            ["processor", "outcome"],
            registry=registry,
        )
        self.findings = Counter(
            "tokenway_processor_findings_total",
            "Sensitive data found by payload processors, by kind.",
            ["processor", "kind"],
            registry=registry,
        )

    def record(self, processor: str, phase: str, seconds: float, outcome: str) -> None:
        self.duration.labels(processor, phase).observe(seconds)
        self.decisions.labels(processor, outcome).inc()

    def found(self, processor: str, counts: Mapping[str, int]) -> None:
        for kind, count in counts.items():
            self.findings.labels(processor, kind).inc(count)
