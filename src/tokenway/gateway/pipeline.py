"""The one request pipeline (ARCHITECTURE.md), shared by the standalone proxy and the picker.

`prepare` runs stages 1-7 (parse, authenticate, pre-routing processors, route, authorize,
request processors, limits, admission, schedule) and returns what a data plane needs to forward;
`settle` runs stage 9 once the data plane has forwarded and observed the answer (stage 8).
The pipeline holds no transport: the aiohttp proxy and the ext_proc server both drive it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from opentelemetry.trace import Span

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.context import InboundRequest, RequestContext, Usage
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.parse import parse_request
from tokenway.gateway.request_hints import apply_request_hints
from tokenway.gateway.stages import AdmissionTicket, Reservation
from tokenway.gateway.state import GatewayState
from tokenway.scheduling.request import Decision, SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.telemetry.access_log import AccessLog
from tokenway.telemetry.metrics import GatewayMetrics
from tokenway.telemetry.tracing import RequestTracer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ForwardOutcome:
    """What the data plane saw while forwarding one request."""

    status: int
    endpoint_url: str | None = None
    usage: Usage | None = None
    ttft: float | None = None
    time_per_output_token: float | None = None
    retries: int = 0
    error: str | None = None
    client_gone: bool = False


@dataclass(slots=True)
class Prepared:
    """A request that passed every admission stage, ready to forward."""

    ctx: RequestContext
    state: GatewayState
    decision: Decision
    scheduling_request: SchedulingRequest
    upstream_body: bytes
    upstream_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    reservation: Reservation | None = None
    ticket: AdmissionTicket | None = None
    span: Span | None = None
    settled: bool = False
    attempt_sent_at: float = 0.0
    """When the current attempt was sent (the registry's clock), for its health report."""


def _upstream_body(ctx: RequestContext) -> bytes:
    body = dict(ctx.body)
    assert ctx.route is not None
    body["model"] = ctx.route.upstream_model
    if ctx.stream:
        # Ask for usage even when the client did not, so every streamed token is counted;
        # the relay removes that extra chunk again (see ResponseObserver.is_usage_only).
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return orjson.dumps(body)


class Pipeline:
    """Runs the stages over a request; built by `gateway.factory`, state swapped on reload."""

    def __init__(
        self,
        state: GatewayState,
        metrics: GatewayMetrics,
        access_log: AccessLog,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.access_log = access_log
        self.clock = clock
        self.rng = rng or random.Random()
        self.tracer: RequestTracer | None = None
        """Set by the gateway when traces are exported (see telemetry.tracing)."""

    def swap(self, state: GatewayState) -> None:
        """Use a new configuration for new requests; requests in flight keep theirs."""
        self.state = state

    async def prepare(
        self,
        inbound: InboundRequest,
        *,
        subset: frozenset[str] | None = None,
        explain: bool = False,
    ) -> Prepared:
        state = self.state
        now = self.clock()
        ctx = parse_request(inbound, now, state.config.gateway.max_request_bytes)
        tracer = self.tracer
        span = tracer.start(ctx) if tracer is not None else None
        try:
            prepared = await self._admit(state, ctx, subset, explain)
        except GatewayError as exc:
            # The id may be one the gateway made up: the client can only learn it from here.
            exc.headers.setdefault("x-request-id", ctx.request_id)
            self.metrics.rejected(ctx, exc.status)
            self.access_log.rejected(ctx, exc, self.clock() - now)
            if span is not None:
                RequestTracer.rejected(span, exc)
            raise
        except BaseException:
            if span is not None:
                span.end()
            raise
        if span is not None:
            prepared.span = span
            prepared.upstream_headers.update(RequestTracer.propagation_headers(span))
        return prepared

    async def _admit(
        self,
        state: GatewayState,
        ctx: RequestContext,
        subset: frozenset[str] | None,
        explain: bool,
    ) -> Prepared:
        stages = state.stages
        ctx.principal = stages.authenticator.authenticate(ctx.inbound)
        if stages.processors is not None:
            await stages.processors.run("pre-routing", ctx)
        route = state.router.resolve(ctx.model, self.rng)
        ctx.route = route = apply_request_hints(
            route,
            ctx.headers,
            state.objectives,
            via_gateway=ctx.inbound.via_gateway,
            base_model=state.base_model(route.pool),
            annotations=ctx.annotations,
        )
        stages.authorizer.authorize(ctx)
        if stages.processors is not None:
            await stages.processors.run("request", ctx)
        reservation = await stages.limiter.reserve(ctx) if stages.limiter is not None else None
        ticket = None
        try:
            pool = state.pools[route.pool]
            snapshots = state.registry.snapshots(route.pool)
            if pool.admission is not None:
                before = self.clock()
                ticket = await pool.admission.admit(ctx, snapshots)
                if self.clock() - before > state.config.gateway.metrics_interval:
                    # The request waited in a flow-control queue: decide on fresh metrics.
                    snapshots = state.registry.snapshots(route.pool)
            request = SchedulingRequest(
                request_id=ctx.request_id,
                model=route.upstream_model,
                base_model=None if route.adapter is None else state.base_model(route.pool),
                adapter=route.adapter,
                prompt=ctx.prompt_text,
                prompt_tokens=ctx.prompt_tokens_estimate,
                max_tokens=ctx.max_tokens,
                priority=route.priority,
                fairness_id=ctx.fairness_id,
                session_id=ctx.headers.get("x-session-id"),
                headers=ctx.headers,
                subset=subset,
            )
            decision = pool.scheduler.schedule(request, snapshots, self.clock(), explain)
            if not decision.endpoints:
                raise GatewayError(
                    503, f"no ready endpoint can serve `{ctx.model}` now", code="no_endpoint"
                )
        except BaseException:
            if ticket is not None:
                ticket.release()
            if reservation is not None:
                await reservation.cancel()
            raise
        prepared = Prepared(
            ctx=ctx,
            state=state,
            decision=decision,
            scheduling_request=request,
            upstream_body=_upstream_body(ctx),
            upstream_headers=ctx.upstream_headers,
            reservation=reservation,
            ticket=ticket,
        )
        if reservation is not None:
            prepared.response_headers.update(reservation.headers())
        return prepared

    def attempt_started(self, prepared: Prepared, endpoint: EndpointSnapshot) -> None:
        """The data plane is sending the request to `endpoint` (counts as in flight)."""
        tokens = prepared.ctx.prompt_tokens_estimate + (prepared.ctx.max_tokens or 0)
        prepared.attempt_sent_at = prepared.state.registry.acquire(endpoint.url, tokens)

    def attempt_finished(
        self, prepared: Prepared, endpoint: EndpointSnapshot, ok: bool | None
    ) -> None:
        """The attempt ended; `ok` False reports the endpoint to passive health checking, None
        (the client left first) says nothing about the endpoint."""
        tokens = prepared.ctx.prompt_tokens_estimate + (prepared.ctx.max_tokens or 0)
        registry, sent = prepared.state.registry, prepared.attempt_sent_at
        registry.release(endpoint.url, tokens, sent)
        if ok:
            registry.report_success(endpoint.url, sent)
        elif ok is not None:
            registry.report_failure(endpoint.url, sent)

    async def settle(self, prepared: Prepared, outcome: ForwardOutcome) -> None:
        """Stage 9: charge tokens, feed the scheduler, record metrics and the access log."""
        if prepared.settled:
            return
        prepared.settled = True
        ctx = prepared.ctx
        try:
            if prepared.ticket is not None:
                prepared.ticket.release()
            if prepared.reservation is not None:
                await prepared.reservation.settle(outcome.usage)
        finally:
            if outcome.endpoint_url is not None:
                usage = outcome.usage or Usage()
                pool = prepared.state.pools[prepared.ctx.route.pool]  # type: ignore[union-attr]
                pool.scheduler.observe(
                    Outcome(
                        request=prepared.scheduling_request,
                        endpoint_url=outcome.endpoint_url,
                        ok=200 <= outcome.status < 300,
                        prompt_tokens=usage.prompt_tokens,
                        cached_tokens=usage.cached_tokens,
                        output_tokens=usage.completion_tokens,
                        now=self.clock(),
                    )
                )
            duration = self.clock() - ctx.received_at
            self.metrics.completed(ctx, outcome, duration)
            self.access_log.completed(ctx, outcome, duration)
            if prepared.span is not None:
                RequestTracer.finished(prepared.span, ctx, outcome)
