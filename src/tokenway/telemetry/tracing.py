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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
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


@dataclass(frozen=True, slots=True)
class TraceExport:
    endpoint: str
    sample_ratio: float | None
    """None: the SDK's sampler from OTEL_TRACES_SAMPLER (default: every trace)."""


def trace_export(config: PlatformConfig) -> TraceExport | None:
    """Where spans go: the platform file first, then the standard environment variables."""
    otlp = config.observability.otlp
    if otlp is not None:
        return TraceExport(otlp.endpoint, otlp.sample_ratio)
    env = os.environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return None if endpoint is None else TraceExport(endpoint, None)


class RequestTracer:
    """Starts and ends the span of each request; owns its exporter."""

    def __init__(self, provider: TracerProvider, export: TraceExport) -> None:
        self.export = export
        self._provider = provider
        self._tracer = provider.get_tracer("tokenway")

    @classmethod
    def export_to(cls, export: TraceExport, service: str = "tokenway") -> RequestTracer:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            # xds-protos ships old copies of the same proto modules; see the script named here.
            raise RuntimeError(
                f"the OTLP exporter cannot load ({exc}); reinstall opentelemetry-proto over "
                "xds-protos' copy: bash scripts/restore-otel-protos.sh .venv/bin/python"
            ) from None
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        sampler = None
        if export.sample_ratio is not None:
            sampler = ParentBased(TraceIdRatioBased(export.sample_ratio))
        provider = TracerProvider(resource=resource, sampler=sampler)
        insecure = export.endpoint.startswith("http://")
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=export.endpoint, insecure=insecure))
        )
        return cls(provider, export)

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
        if not span.is_recording():
            span.end()
            return
        attributes: dict[str, str | int | float] = {
            "http.response.status_code": outcome.status,
            "tokenway.retries": outcome.retries,
        }
        if ctx.route is not None:
            attributes["gen_ai.response.model"] = ctx.route.upstream_model
            attributes["tokenway.pool"] = ctx.route.pool
        if ctx.principal is not None:
            attributes["tokenway.team"] = ctx.principal.team
        if outcome.endpoint_url is not None:
            host, _, port = outcome.endpoint_url.rpartition("//")[2].partition(":")
            attributes["server.address"] = host
            if port.isdigit():
                attributes["server.port"] = int(port)
        usage = outcome.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            if usage.cached_tokens is not None:
                attributes["tokenway.usage.cached_tokens"] = usage.cached_tokens
        if outcome.ttft is not None:
            attributes["tokenway.time_to_first_token_s"] = outcome.ttft
        failed = outcome.error is not None or outcome.status >= 500
        if failed:
            attributes["error.type"] = "client_gone" if outcome.client_gone else str(outcome.status)
        span.set_attributes(attributes)
        if failed:
            span.set_status(Status(StatusCode.ERROR, outcome.error or f"status {outcome.status}"))
        span.end()

    def shutdown(self) -> None:
        """Flush what is batched and stop the export thread."""
        self._provider.shutdown()
