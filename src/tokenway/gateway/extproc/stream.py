"""One ext_proc stream, one HTTP request: the state machine between Envoy and the pipeline.

Envoy sends the request headers, body chunks and the response; each message gets zero or
more responses. The request is decided once its body is complete: the destination header and
`envoy.lb` metadata go back with clear_route_cache, then the (possibly rewritten) body. The
response is relayed as it arrives (through the response processors, if any apply) and observed
on the side for usage, TTFT and ITL. A JSON answer that response processors must see whole is
held, headers included, until its last byte, so a rejection can still replace it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum

from envoy.extensions.filters.http.ext_proc.v3.processing_mode_pb2 import ProcessingMode
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.gateway.answer_filter import AnswerFilter, answer_filter
from tokenway.gateway.context import InboundRequest, Usage
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.extproc import messages
from tokenway.gateway.extproc.body import BodyBuffer
from tokenway.gateway.extproc.headers import (
    downstream_peer,
    header_dict,
    served_endpoint,
    subset_hint,
)
from tokenway.gateway.extproc.protocol import DESTINATION_HEADER
from tokenway.gateway.observe import ResponseObserver
from tokenway.gateway.pipeline import ForwardOutcome, Pipeline, Prepared

_FULL_DUPLEX = ProcessingMode.FULL_DUPLEX_STREAMED
_BUFFERED = ProcessingMode.BUFFERED
_NONE = ProcessingMode.NONE

Responses = list[pb.ProcessingResponse]
log = logging.getLogger(__name__)


class Phase(Enum):
    HEADERS = "headers"
    """Waiting for the request headers."""
    BODY = "body"
    """Collecting the request body."""
    FORWARDED = "forwarded"
    """Decided; waiting for the response."""
    DONE = "done"
    """Answered (settled, or rejected with an immediate response)."""


class ExtProcStream:
    """The state of one request between Envoy and the pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.phase = Phase.HEADERS
        self._request_mode = _FULL_DUPLEX
        self._response_mode = _FULL_DUPLEX
        self._method = "POST"
        self._path = "/"
        self._headers: dict[str, str] = {}
        self._subset: frozenset[str] | None = None
        self._body = BodyBuffer(pipeline.state.config.gateway.max_request_bytes)
        self.prepared: Prepared | None = None
        self._primary: EndpointSnapshot | None = None
        self._peer = ""
        self._observer: ResponseObserver | None = None
        self._answer: AnswerFilter | None = None
        self._held_headers: pb.ProcessingResponse | None = None
        """The response headers answer, while a whole JSON answer is collected for the filter."""
        self._held_body = bytearray()
        self._rejection: GatewayError | None = None
        """A response processor stopped the answer; the rest of the stream is dropped."""
        self._status = 0
        self._served: str | None = None

    async def handle(self, message: pb.ProcessingRequest) -> Responses:
        kind = message.WhichOneof("request")
        if message.HasField("metadata_context"):
            self._served = served_endpoint(message.metadata_context) or self._served
        if kind == "request_headers":
            return await self._request_headers(message)
        if kind == "request_body":
            return await self._request_body(message.request_body)
        if kind == "request_trailers":
            return await self._request_trailers()
        if kind == "response_headers":
            return await self._response_headers(message.response_headers)
        if kind == "response_body":
            return await self._response_body(message.response_body)
        if kind == "response_trailers":
            return [
                *await self._end_of_response(trailers_follow=True),
                messages.continue_response_trailers(),
            ]
        return []

    async def close(self) -> None:
        """The stream ended; a request decided but never answered counts as a client gone."""
        if self.phase is Phase.FORWARDED:
            await self._settle(
                ForwardOutcome(
                    status=499,
                    endpoint_url=self._served_url(),
                    usage=self._counted_usage(),
                    error="stream closed before the response ended",
                    client_gone=True,
                )
            )

    # request path

    async def _request_headers(self, message: pb.ProcessingRequest) -> Responses:
        if message.HasField("protocol_config"):
            self._request_mode = message.protocol_config.request_body_mode
            self._response_mode = message.protocol_config.response_body_mode
        headers = header_dict(message.request_headers.headers)
        self._method = headers.get(":method", "POST")
        self._path = headers.get(":path", "/").split("?", 1)[0]
        self._headers = {k: v for k, v in headers.items() if not k.startswith(":")}
        if message.HasField("metadata_context"):
            self._subset = subset_hint(message.metadata_context)
        self._peer = downstream_peer(message.attributes)
        self.phase = Phase.BODY
        if message.request_headers.end_of_stream or self._request_mode == _NONE:
            return await self._decide(body_follows=False)
        if self._request_mode == _BUFFERED:
            # Envoy holds the whole request until the body is answered: the route goes there.
            return [messages.continue_request_headers()]
        if self._request_mode != _FULL_DUPLEX:
            return self._reject(
                GatewayError(
                    500, "the picker needs request body mode BUFFERED or FULL_DUPLEX_STREAMED"
                )
            )
        return []

    async def _request_body(self, body: pb.HttpBody) -> Responses:
        if self.phase is not Phase.BODY:
            return []
        try:
            self._body.append(body.body)
        except GatewayError as error:
            return self._reject(error)
        # BUFFERED: the one body message is the whole body; Envoy leaves end_of_stream unset
        # when trailers follow, and still waits for this answer.
        if not body.end_of_stream and self._request_mode != _BUFFERED:
            return []
        return await self._decide(body_follows=True)

    async def _request_trailers(self) -> Responses:
        responses = []
        if self.phase is Phase.BODY:
            responses = await self._decide(body_follows=True, trailers_follow=True)
        return [*responses, messages.continue_request_trailers()]

    async def _decide(self, *, body_follows: bool, trailers_follow: bool = False) -> Responses:
        started = self._pipeline.clock()
        inbound = InboundRequest(
            method=self._method,
            path=self._path,
            headers=self._headers,
            body=self._body.getvalue(),
            peer=self._peer,
            via_gateway=True,
        )
        try:
            if self._subset is not None and not self._subset:
                raise GatewayError(503, "the gateway allowed no endpoints", code="no_endpoint")
            prepared = await self._pipeline.prepare(inbound, subset=self._subset)
        except GatewayError as error:
            return self._reject(error)
        except Exception:
            # A bug must not turn into Envoy's failure mode for every request: answer 500.
            log.exception("picker failed on %s %s", self._method, self._path)
            return self._reject(GatewayError(500, "the endpoint picker failed", code="internal"))
        self.prepared = prepared
        self._primary = prepared.decision.endpoints[0]
        self._pipeline.attempt_started(prepared, self._primary)
        self.phase = Phase.FORWARDED
        endpoints = ",".join(e.address for e in prepared.decision.endpoints)
        headers = self._upstream_headers(prepared, endpoints, body_follows)
        body = prepared.upstream_body
        if not body_follows:
            responses = [messages.routed_headers(headers, endpoints)]
        elif self._request_mode == _BUFFERED:
            responses = [messages.routed_buffered_body(headers, endpoints, body)]
        else:
            responses = [
                messages.routed_headers(headers, endpoints),
                *messages.streamed_body(body, end_of_stream=not trailers_follow),
            ]
        # The picker's share of the request's latency: whole request in, routing answer out.
        self._pipeline.metrics.overhead.observe(self._pipeline.clock() - started)
        return responses

    @staticmethod
    def _upstream_headers(
        prepared: Prepared, endpoints: str, body_follows: bool
    ) -> Mapping[str, str]:
        headers = {**prepared.upstream_headers, DESTINATION_HEADER: endpoints}
        if body_follows:
            headers["content-length"] = str(len(prepared.upstream_body))
        return headers

    def _reject(self, error: GatewayError) -> Responses:
        self.phase = Phase.DONE
        return [messages.immediate(error)]

    # response path

    async def _response_headers(self, message: pb.HttpHeaders) -> Responses:
        headers = header_dict(message.headers)
        self._status = int(headers.get(":status", "0") or 0)
        prepared = self.prepared
        reply = messages.response_headers(prepared.response_headers if prepared else {})
        if prepared is not None:
            content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            streaming = prepared.ctx.stream and content_type == "text/event-stream"
            self._observer = ResponseObserver(stream=streaming, started_at=prepared.ctx.received_at)
            # Processors rewrite the answer: only possible when Envoy streams it through us.
            if self._status == 200 and self._response_mode == _FULL_DUPLEX:
                self._answer = answer_filter(prepared.state.stages.processors, prepared.ctx)
            # Processors judge a JSON answer whole: hold it, headers too, until its end.
            if (
                self._answer is not None
                and not streaming
                and not message.end_of_stream
                and self._response_mode == _FULL_DUPLEX
            ):
                self._held_headers = reply
                return []
        if message.end_of_stream:
            await self._finish()
        return [reply]

    async def _response_body(self, body: pb.HttpBody) -> Responses:
        observer = self._observer
        if self._response_mode != _FULL_DUPLEX:
            if observer is not None:
                observer.feed(body.body, self._pipeline.clock())
            if body.end_of_stream:
                await self._end_of_response(trailers_follow=False)
            return [messages.continue_response_body()]
        if observer is None:
            return list(
                messages.streamed_body(body.body, end_of_stream=body.end_of_stream, request=False)
            )
        now = self._pipeline.clock()
        if self._held_headers is not None:
            observer.feed(body.body, now)
            self._held_body += body.body
            return await self._end_of_response(trailers_follow=False) if body.end_of_stream else []
        data = self._relay(observer, body.body, now)
        if body.end_of_stream:
            data += self._rest(observer, now)
            await self._finish()
        return list(messages.streamed_body(data, end_of_stream=body.end_of_stream, request=False))

    async def _end_of_response(self, *, trailers_follow: bool) -> Responses:
        """The answer ended (last body chunk or trailers): release what is held, then settle."""
        observer = self._observer
        responses: Responses = []
        if observer is not None and self.phase is Phase.FORWARDED:
            now = self._pipeline.clock()
            if self._held_headers is not None:
                responses = self._release_held(observer, now, end_of_stream=not trailers_follow)
            elif (rest := self._rest(observer, now)) and self._response_mode == _FULL_DUPLEX:
                responses = list(messages.streamed_body(rest, end_of_stream=False, request=False))
        await self._finish()
        return responses

    def _release_held(
        self, observer: ResponseObserver, now: float, *, end_of_stream: bool
    ) -> Responses:
        observer.finish(now)
        held, reply = bytes(self._held_body), self._held_headers
        self._held_body.clear()
        self._held_headers = None
        assert self._answer is not None and reply is not None
        try:
            body = self._answer.body(held)
        except GatewayError as rejected:
            self._rejection = rejected
            prepared = self.prepared
            if prepared is not None:  # like the standalone proxy's error answers
                extra = {**prepared.response_headers, "x-request-id": prepared.ctx.request_id}
                rejected.headers = {**extra, **rejected.headers}
            return [messages.immediate(rejected)]
        if body != held:
            prepared = self.prepared
            extra = prepared.response_headers if prepared else {}
            reply = messages.response_headers({**extra, "content-length": str(len(body))})
        return [
            reply,
            *messages.streamed_body(body, end_of_stream=end_of_stream, request=False),
        ]

    def _rest(self, observer: ResponseObserver, now: float) -> bytes:
        """Bytes after the last complete event (a stream's unterminated tail), through the
        response processors with what they still hold, unless the answer was cut."""
        rest = observer.finish(now)
        if self._rejection is not None:
            return b""
        if self._answer is None or not observer.stream:
            return rest
        try:
            return self._answer.end(rest)
        except GatewayError as rejected:
            self._rejection = rejected
            return b"data: " + rejected.body_bytes() + b"\n\n"

    def _relay(self, observer: ResponseObserver, chunk: bytes, now: float) -> bytes:
        events = observer.feed(chunk, now)
        if not observer.stream:
            return chunk
        if self._rejection is not None:
            return b""
        prepared = self.prepared
        if prepared is not None and not prepared.ctx.client_wants_usage:
            # The pipeline asked the server for usage; the client did not, so drop that chunk.
            events = [e for e in events if not ResponseObserver.is_usage_only(e)]
        if self._answer is not None:
            try:
                events = [self._answer.event(e) for e in events]
            except GatewayError as rejected:
                # Like the standalone proxy: end the answer with the error event, drop the rest.
                self._rejection = rejected
                return b"data: " + rejected.body_bytes() + b"\n\n"
        return b"".join(events)

    def _counted_usage(self) -> Usage | None:
        observer, prepared = self._observer, self.prepared
        if observer is None or prepared is None:
            return None
        return observer.counted_usage(prepared.ctx.prompt_tokens_estimate)

    async def _finish(self) -> None:
        if self.phase is not Phase.FORWARDED:
            return
        observer = self._observer
        served = self._served_url()
        decided = [e.url for e in self.prepared.decision.endpoints] if self.prepared else []
        rejection = self._rejection
        await self._settle(
            ForwardOutcome(
                status=rejection.status if rejection else self._status,
                endpoint_url=served,
                usage=self._counted_usage(),
                ttft=observer.ttft if observer else None,
                time_per_output_token=observer.time_per_output_token() if observer else None,
                retries=decided.index(served) if served in decided else 0,
                error=(rejection.code if rejection else None)
                or (observer.upstream_error if observer else None)
                or (None if self._status < 500 else f"upstream status {self._status}"),
            )
        )

    def _served_url(self) -> str | None:
        if self.prepared is None:
            return None
        for endpoint in self.prepared.decision.endpoints:
            if endpoint.address == self._served:
                return endpoint.url
        return self._primary.url if self._primary else None

    async def _settle(self, outcome: ForwardOutcome) -> None:
        self.phase = Phase.DONE
        prepared, primary = self.prepared, self._primary
        if prepared is None or primary is None:
            return
        # Envoy moved on from the primary only if it failed; that feeds passive health checks.
        # A client that left says nothing about the endpoint.
        ok = (
            None
            if outcome.client_gone
            else outcome.endpoint_url == primary.url and outcome.status < 500
        )
        self._pipeline.attempt_finished(prepared, primary, ok)
        await self._pipeline.settle(prepared, outcome)
