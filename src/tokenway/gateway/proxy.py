"""Stage 8 for the standalone data plane: forward to the chosen endpoint and relay the answer.

Retries walk the decision's fallbacks only while nothing has reached the client. Streams are
relayed event by event as they arrive (aiohttp's write waits for the client, which is the
backpressure); a failure after the first byte ends the stream with an SSE error event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.answer_filter import answer_filter
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.http_errors import error_response
from tokenway.gateway.observe import ResponseObserver
from tokenway.gateway.pipeline import ForwardOutcome, Pipeline, Prepared
from tokenway.net.http_client import ClientError, HttpClient, Response

_UPSTREAM_ERRORS = (ClientError, ConnectionError, OSError)


class _Attempt(Exception):
    """An attempt that failed before any byte reached the client: try the next endpoint."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _stream_error_event(message: str, status: int) -> bytes:
    error = GatewayError(status, message, code="upstream_stream_error").body()
    return b"data: " + json.dumps(error).encode() + b"\n\n"


class Forwarder:
    """Sends prepared requests upstream with the shared, pooled HTTP client."""

    def __init__(self, client: HttpClient, pipeline: Pipeline, clock: Callable[[], float]) -> None:
        self.client = client
        self.pipeline = pipeline
        self.clock = clock

    def _response_headers(self, prepared: Prepared, endpoint: EndpointSnapshot) -> dict[str, str]:
        headers = {
            "x-request-id": prepared.ctx.request_id,
            "x-tokenway-endpoint": endpoint.url,
            **prepared.response_headers,
        }
        if prepared.decision.scores is not None:
            headers["x-tokenway-scores"] = json.dumps(prepared.decision.scores)
        return headers

    @staticmethod
    def _error(prepared: Prepared, error: GatewayError) -> web.Response:
        """An error answer carrying the request id and the rate-limit headers, like any other."""
        return error_response(
            error, {**prepared.response_headers, "x-request-id": prepared.ctx.request_id}
        )

    async def forward(self, request: web.Request, prepared: Prepared) -> web.StreamResponse:
        settings = prepared.state.config.gateway
        attempts = prepared.decision.endpoints[: 1 + settings.retries.before_first_byte]
        timeouts = settings.timeouts
        headers = {
            **prepared.upstream_headers,
            "content-type": "application/json",
            "x-request-id": prepared.ctx.request_id,
        }
        last = _Attempt(503, "no endpoint was tried")
        retries = 0
        for index, endpoint in enumerate(attempts):
            retries = index
            self.pipeline.attempt_started(prepared, endpoint)
            ok: bool | None = False
            try:
                started = self.clock()
                try:
                    upstream = await self.client.request(
                        "POST",
                        endpoint.url + prepared.ctx.inbound.path,
                        headers=headers,
                        body=prepared.upstream_body,
                        connect_timeout=timeouts.connect,
                        first_byte_timeout=timeouts.first_byte,
                        idle_timeout=timeouts.idle,
                    )
                except TimeoutError:
                    raise _Attempt(504, "the model server did not answer in time") from None
                except _UPSTREAM_ERRORS as exc:
                    raise _Attempt(
                        502, f"cannot reach the model server: {type(exc).__name__}"
                    ) from None
                if upstream.status >= 500:
                    upstream.close()
                    raise _Attempt(502, f"the model server answered {upstream.status}")
                ok = True
                return await self._relay(request, prepared, endpoint, upstream, started, retries)
            except _Attempt as attempt:
                last = attempt
            except asyncio.CancelledError:
                if not ok:
                    # The client left before an answer came (the relay settles its own): give
                    # back what admission took, or the team's slots and estimate stay charged.
                    ok = None
                    outcome = ForwardOutcome(
                        status=499,
                        endpoint_url=endpoint.url,
                        retries=retries,
                        error="client disconnected",
                        client_gone=True,
                    )
                    await asyncio.shield(self.pipeline.settle(prepared, outcome))
                raise
            except Exception:
                if not ok:
                    # A fault of the gateway's (the server's middleware answers 500): it says
                    # nothing about the endpoint, and what admission took is given back.
                    ok = None
                    outcome = ForwardOutcome(
                        status=500, endpoint_url=endpoint.url, retries=retries, error="internal"
                    )
                    await asyncio.shield(self.pipeline.settle(prepared, outcome))
                raise
            finally:
                self.pipeline.attempt_finished(prepared, endpoint, ok)
        error = GatewayError(last.status, last.message, code="upstream_unavailable")
        await asyncio.shield(
            self.pipeline.settle(
                prepared, ForwardOutcome(status=last.status, retries=retries, error=last.message)
            )
        )
        return self._error(prepared, error)

    async def _relay(
        self,
        request: web.Request,
        prepared: Prepared,
        endpoint: EndpointSnapshot,
        upstream: Response,
        started: float,
        retries: int,
    ) -> web.StreamResponse:
        streaming = prepared.ctx.stream and upstream.content_type == "text/event-stream"
        observer = ResponseObserver(stream=streaming, started_at=started)
        answer = (
            answer_filter(prepared.state.stages.processors, prepared.ctx)
            if upstream.status == 200
            else None
        )
        outcome_status, error, client_gone = upstream.status, None, False
        try:
            if not streaming:
                try:
                    body = await upstream.read()
                except (*_UPSTREAM_ERRORS, TimeoutError) as exc:
                    outcome_status, error = 502, f"upstream body failed: {type(exc).__name__}"
                    gateway_error = GatewayError(502, error, code="upstream_unavailable")
                    return self._error(prepared, gateway_error)
                observer.feed(body, self.clock())
                observer.finish(self.clock())
                if answer is not None:
                    try:
                        body = answer.body(body)
                    except GatewayError as rejected:
                        outcome_status, error = rejected.status, rejected.code
                        return self._error(prepared, rejected)
                response = web.Response(
                    status=upstream.status,
                    body=body,
                    headers=self._response_headers(prepared, endpoint),
                    content_type=upstream.content_type or "application/octet-stream",
                )
                return response
            response = web.StreamResponse(
                status=upstream.status, headers=self._response_headers(prepared, endpoint)
            )
            response.content_type = "text/event-stream"
            response.headers["cache-control"] = "no-cache"
            await response.prepare(request)
            keep_usage = prepared.ctx.client_wants_usage
            try:
                async for chunk in upstream.chunks():
                    events = observer.feed(chunk, self.clock())
                    if not events:
                        continue
                    if not keep_usage:
                        events = [e for e in events if not observer.is_usage_only(e)]
                    if answer is not None:
                        try:
                            events = [answer.event(e) for e in events]
                        except GatewayError as rejected:
                            outcome_status, error = rejected.status, rejected.code
                            await response.write(b"data: " + rejected.body_bytes() + b"\n\n")
                            break
                    if events:
                        await response.write(b"".join(events))
                else:
                    rest = observer.finish(self.clock())
                    if answer is not None:
                        try:
                            rest = answer.end(rest)
                        except GatewayError as rejected:
                            outcome_status, error = rejected.status, rejected.code
                            rest = b"data: " + rejected.body_bytes() + b"\n\n"
                    if rest:
                        await response.write(rest)
            except (*_UPSTREAM_ERRORS, TimeoutError) as exc:
                if request.transport is None or request.transport.is_closing():
                    client_gone, error = True, "client disconnected"
                    outcome_status = 499
                else:
                    error = f"upstream stream failed: {type(exc).__name__}"
                    outcome_status = 502
                    await response.write(_stream_error_event(error, 502))
            if not client_gone:
                await response.write_eof()
            return response
        except asyncio.CancelledError:
            client_gone, error, outcome_status = True, "client disconnected", 499
            raise
        finally:
            upstream.close()
            outcome = ForwardOutcome(
                status=outcome_status,
                endpoint_url=endpoint.url,
                usage=observer.counted_usage(prepared.ctx.prompt_tokens_estimate),
                ttft=observer.ttft,
                time_per_output_token=observer.time_per_output_token(),
                retries=retries,
                error=error or observer.upstream_error,
                client_gone=client_gone,
            )
            await asyncio.shield(self.pipeline.settle(prepared, outcome))
