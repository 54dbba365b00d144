"""OpenTelemetry traces: one span per request, named and attributed by the GenAI conventions.

On when the platform file sets `observability.otlp.endpoint` or the environment sets
OTEL_EXPORTER_OTLP_ENDPOINT (the rendered picker Deployment does); otherwise the pipeline holds
no tracer and pays one `is None` check per request. Spans go over OTLP/gRPC, the protocol vLLM's
`--otlp-traces-endpoint` speaks too, so one collector address serves the gateway and the model
servers. A span's parent is the caller's W3C `traceparent`; the request sent upstream carries the
span's own, so a model server that exports traces joins the same trace.

Export happens on the SDK's batch thread; a collector that is down costs dropped spans, never a
slower request.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tokenway.config.platform import PlatformConfig
from tokenway.gateway.context import RequestContext
from tokenway.gateway.errors import GatewayError

if TYPE_CHECKING:
    from tokenway.gateway.pipeline import ForwardOutcome

_OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
"""tokenway's operation names -> gen_ai.operation.name values."""
_PROPAGATOR = TraceContextTextMapPropagator()


def otlp_endpoint(config: PlatformConfig) -> str | None:
    """Where spans go: the platform file first, then the standard environment variables."""
    if config.observability.otlp is not None:
        return config.observability.otlp.endpoint
    env = os.environ
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")


class RequestTracer:
    """Starts and ends the span of each request; owns its exporter."""

    def __init__(self, provider: TracerProvider, endpoint: str) -> None:
        self.endpoint = endpoint
        self._provider = provider
        self._tracer = provider.get_tracer("tokenway")

    @classmethod
    def export_to(cls, endpoint: str, service: str = "tokenway") -> RequestTracer:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            # xds-protos ships old copies of the same proto modules; see the script named here.
            raise RuntimeError(
                f"the OTLP exporter cannot load ({exc}); reinstall opentelemetry-proto over "
                "xds-protos' copy: bash scripts/restore-otel-protos.sh .venv/bin/python"
            ) from None
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        provider = TracerProvider(resource=resource)
        insecure = endpoint.startswith("http://")
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure))
        )
        return cls(provider, endpoint)

    def start(self, ctx: RequestContext) -> Span:
        operation = _OPERATIONS.get(ctx.operation, ctx.operation)
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": ctx.model,
            "tokenway.request_id": ctx.request_id,
        }
        if ctx.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = ctx.max_tokens
        return self._tracer.start_span(
            f"{operation} {ctx.model}",
            context=_PROPAGATOR.extract(ctx.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )

    @staticmethod
    def propagation_headers(span: Span) -> dict[str, str]:
        """`traceparent` (and `tracestate`) naming this span, for the request sent upstream."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=set_span_in_context(span, Context()))
        return carrier

    @staticmethod
    def rejected(span: Span, error: GatewayError) -> None:
        span.set_attribute("http.response.status_code", error.status)
        span.set_attribute("error.type", error.code or str(error.status))
        span.set_status(Status(StatusCode.ERROR, error.message))
        span.end()

    @staticmethod
    def finished(span: Span, ctx: RequestContext, outcome: ForwardOutcome) -> None:
        if ctx.route is not None:
            span.set_attribute("gen_ai.response.model", ctx.route.upstream_model)
            span.set_attribute("tokenway.pool", ctx.route.pool)
        if ctx.principal is not None:
            span.set_attribute("tokenway.team", ctx.principal.team)
        if outcome.endpoint_url is not None:
            host, _, port = outcome.endpoint_url.rpartition("//")[2].partition(":")
            span.set_attribute("server.address", host)
            if port.isdigit():
                span.set_attribute("server.port", int(port))
        if outcome.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", outcome.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", outcome.usage.completion_tokens)
            if outcome.usage.cached_tokens is not None:
                span.set_attribute("tokenway.usage.cached_tokens", outcome.usage.cached_tokens)
        if outcome.ttft is not None:
            span.set_attribute("tokenway.time_to_first_token_s", outcome.ttft)
        span.set_attribute("tokenway.retries", outcome.retries)
        span.set_attribute("http.response.status_code", outcome.status)
        if outcome.error is not None or outcome.status >= 500:
            span.set_attribute(
                "error.type", "client_gone" if outcome.client_gone else str(outcome.status)
            )
            span.set_status(Status(StatusCode.ERROR, outcome.error or f"status {outcome.status}"))
        span.end()

    def shutdown(self) -> None:
        """Flush what is batched and stop the export thread."""
        self._provider.shutdown()
