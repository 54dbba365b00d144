"""A plain OpenAI-compatible server (TGI, a hosted API, anything without known metrics).

Nothing is scraped: the endpoint's load is known only from the gateway's own in-flight counts,
and its health only from passive health (connect errors, 5xx, timeouts).
"""

from __future__ import annotations

from tokenway.datalayer.endpoint import EndpointMetrics


class OpenaiParser:
    """The engine with no metrics: never scraped, always the empty signal set."""

    engine = "openai"
    metrics_path: str | None = None

    def parse(self, text: str) -> EndpointMetrics:
        return EndpointMetrics()
