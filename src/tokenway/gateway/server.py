"""The standalone data plane: an aiohttp server speaking the OpenAI HTTP API."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tokenway.auth.tls import peer_uri_sans
from tokenway.config.models import ModelSpec
from tokenway.gateway.context import InboundRequest
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.headers import merged_headers
from tokenway.gateway.http_errors import error_response
from tokenway.gateway.parse import OPERATIONS, request_id

_EXPLAIN_HEADER = "x-tokenway-explain"
log = logging.getLogger(__name__)


@web.middleware
async def openai_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error the client sees is an OpenAI error body: unknown paths and methods, and
    failures no handler foresaw, included."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{request.method} {request.path}: {exc.reason}"
        # Keep what aiohttp says besides the body (a 405's Allow, say).
        kept = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
        return error_response(GatewayError(exc.status, message, code=exc.reason.lower()), kept)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError(500, "internal gateway error", code="internal"))


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing early (413) when it is or becomes larger than the limit."""
    if request.content_length is not None and request.content_length > limit:
        raise GatewayError(413, f"request body exceeds {limit} bytes", code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"request body exceeds {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _inbound(request: web.Request, body: bytes) -> InboundRequest:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    return InboundRequest(
        method=request.method,
        path=request.path,
        headers=merged_headers(request.headers.items()),
        body=body,
        peer=str(peer[0]) if peer else "",
        peer_certificate_uris=peer_uri_sans(
            transport.get_extra_info("peercert") if transport else None
        ),
    )


def _card(spec: ModelSpec) -> dict[str, str]:
    return {"id": spec.name, "object": "model", "owned_by": "tokenway", "pool": spec.pool}


class GatewayApp:
    """HTTP handlers over a Gateway; nothing here decides anything."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def openai(self, request: web.Request) -> web.StreamResponse:
        gateway = self.gateway
        started = gateway.clock()
        limit = gateway.pipeline.state.config.gateway.max_request_bytes
        try:
            inbound = _inbound(request, await _read_body(request, limit))
            explain = request.headers.get(_EXPLAIN_HEADER, "").lower() in ("1", "true")
            prepared = await gateway.pipeline.prepare(inbound, explain=explain)
        except GatewayError as exc:
            # The pipeline names the request it parsed; a request refused before that (bad
            # JSON, too large) still gets the id the client sent, or a new one.
            return error_response(exc, {"x-request-id": request_id(request.headers)})
        gateway.metrics.overhead.observe(gateway.clock() - started)
        return await gateway.forwarder.forward(request, prepared)

    def _visible_models(self, request: web.Request) -> list[ModelSpec]:
        """The models the caller's team may use; the caller is identified like any API
        request (401 without valid credentials)."""
        stages = self.gateway.stages
        team = stages.authenticator.authenticate(_inbound(request, b"")).team
        models = self.gateway.pipeline.state.config.models
        return [spec for spec in models if stages.authorizer.lists_model(team, spec.name)]

    async def models(self, request: web.Request) -> web.Response:
        try:
            visible = self._visible_models(request)
        except GatewayError as exc:
            return error_response(exc)
        return web.json_response({"object": "list", "data": [_card(spec) for spec in visible]})

    async def model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        try:
            visible = self._visible_models(request)
        except GatewayError as exc:
            return error_response(exc)
        for spec in visible:
            if spec.name == name:
                return web.json_response(_card(spec))
        error = GatewayError(404, f"The model `{name}` does not exist.", code="model_not_found")
        return error_response(error)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        ready = self.gateway.ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        payload = generate_latest(self.gateway.metrics.registry)
        return web.Response(body=payload, headers={"content-type": CONTENT_TYPE_LATEST})

    async def usage(self, request: web.Request) -> web.Response:
        team = request.match_info["team"]
        try:
            # A team sees its own usage: the caller is identified like any API request.
            principal = self.gateway.stages.authenticator.authenticate(_inbound(request, b""))
            if principal.team != team:
                raise GatewayError(403, "a team can only read its own usage", code="forbidden")
            report = await self.gateway.usage_report(team)
        except GatewayError as exc:
            return error_response(exc)
        return web.json_response(report, dumps=lambda v: json.dumps(v, default=str))


def build_app(gateway: Gateway) -> web.Application:
    handlers = GatewayApp(gateway)
    # The body limit is enforced per request from the live configuration, not by aiohttp.
    app = web.Application(client_max_size=2**62, middlewares=[openai_errors])
    for path in OPERATIONS:
        app.router.add_post(path, handlers.openai)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_get("/v1/models/{model:.+}", handlers.model)
    app.router.add_get("/health", handlers.health)
    app.router.add_get("/ready", handlers.ready)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/admin/usage/{team}", handlers.usage)
    return app
