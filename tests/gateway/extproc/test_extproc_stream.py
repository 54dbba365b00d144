"""The ext_proc stream state machine, driven over real gRPC as Envoy would drive it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc
import pytest
from envoy.config.core.v3.base_pb2 import HeaderMap, HeaderValue, Metadata
from envoy.extensions.filters.http.ext_proc.v3.processing_mode_pb2 import ProcessingMode
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from extproc_stack import chat
from google.protobuf.struct_pb2 import Struct

from tokenway.config.platform import PlatformConfig
from tokenway.datalayer.endpoint import EndpointMetrics
from tokenway.gateway.extproc.protocol import MAX_BODY_CHUNK
from tokenway.gateway.extproc.server import EppServer, start_epp
from tokenway.gateway.gateway import Gateway

ENDPOINTS = ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8001"]
FULL_DUPLEX = ProcessingMode.FULL_DUPLEX_STREAMED
BUFFERED = ProcessingMode.BUFFERED


def config(**gateway: object) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "gateway": {"accessLog": False, **gateway},
            "pools": [{"name": "pool", "endpoints": ENDPOINTS}],
            "models": [{"name": "m", "pool": "pool", "model": "served-m"}],
        }
    )


NOW = 1000.0


@asynccontextmanager
async def running_picker(platform: PlatformConfig) -> AsyncIterator[tuple[EppServer, Gateway]]:
    # A frozen clock and fresh metrics: admission sees an idle pool, without scraping anything.
    gateway = Gateway(platform, clock=lambda: NOW)
    for url in ENDPOINTS:
        gateway.registry.update_metrics(url, EndpointMetrics(scraped_at=NOW))
    server = await start_epp(gateway.pipeline, ("127.0.0.1", 0), ("127.0.0.1", 0))
    try:
        yield server, gateway
    finally:
        await server.stop(grace=0)


@pytest.fixture
async def picker() -> AsyncIterator[tuple[EppServer, Gateway]]:
    async with running_picker(config(maxRequestBytes="300Ki")) as running:
        yield running


def headers_message(
    mode: int = FULL_DUPLEX,
    *,
    end_of_stream: bool = False,
    subset: list[str] | None = None,
    path: str = "/v1/chat/completions",
    **extra: str,
) -> pb.ProcessingRequest:
    pairs = {":method": "POST", ":path": path, "content-type": "application/json", **extra}
    message = pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(
            headers=HeaderMap(
                headers=[HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()]
            ),
            end_of_stream=end_of_stream,
        ),
        protocol_config=pb.ProtocolConfiguration(
            request_body_mode=mode, response_body_mode=FULL_DUPLEX
        ),
    )
    if subset is not None:
        hint = Struct()
        hint.update({"x-gateway-destination-endpoint-subset": subset})
        message.metadata_context.CopyFrom(Metadata(filter_metadata={"envoy.lb.subset_hint": hint}))
    return message


def body_messages(body: bytes, chunk: int = 16_384) -> list[pb.ProcessingRequest]:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return [
        pb.ProcessingRequest(
            request_body=pb.HttpBody(body=piece, end_of_stream=i == len(pieces) - 1)
        )
        for i, piece in enumerate(pieces)
    ]


async def exchange(
    server: EppServer, messages: Sequence[pb.ProcessingRequest], expect: int
) -> list[pb.ProcessingResponse]:
    """Send every message, then read `expect` responses (Envoy keeps the stream open)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = pb_grpc.ExternalProcessorStub(channel).Process()
        for message in messages:
            await call.write(message)
        async with asyncio.timeout(10):  # a missing answer fails the test instead of hanging
            responses = [await call.read() for _ in range(expect)]
        await call.done_writing()
        return responses


def by_label(gateway: Gateway, sample: str, label: str) -> dict[str, float]:
    """The gateway's values of metric sample `sample`, keyed by one label."""
    return {
        s.labels[label]: s.value
        for metric in gateway.metrics.registry.collect()
        for s in metric.samples
        if s.name == sample
    }


def set_headers(response: pb.CommonResponse) -> dict[str, str]:
    return {h.header.key: h.header.raw_value.decode() for h in response.header_mutation.set_headers}


async def test_full_duplex_decides_after_the_body_and_resends_it_in_chunks(picker) -> None:
    server, _ = picker
    body = json.dumps(chat(content="x" * 200_000)).encode()
    expected = json.dumps({**json.loads(body), "model": "served-m"}, separators=(",", ":")).encode()
    chunks = -(-len(expected) // MAX_BODY_CHUNK)
    responses = await exchange(server, [headers_message(), *body_messages(body)], 1 + chunks)
    first = responses[0]
    assert first.WhichOneof("response") == "request_headers"
    common = first.request_headers.response
    assert common.clear_route_cache
    headers = set_headers(common)
    destination = headers["x-gateway-destination-endpoint"]
    assert destination.split(",")[0] in {"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8001"}
    lb = first.dynamic_metadata.fields["envoy.lb"].struct_value
    assert lb.fields["x-gateway-destination-endpoint"].string_value == destination
    assert headers["content-length"] == str(len(expected))
    streamed = [r.request_body.response.body_mutation.streamed_response for r in responses[1:]]
    assert all(len(s.body) <= MAX_BODY_CHUNK for s in streamed)
    assert [s.end_of_stream for s in streamed] == [False] * (chunks - 1) + [True]
    assert b"".join(s.body for s in streamed) == expected
    overhead = {
        s.name: s.value for metric in picker[1].metrics.registry.collect() for s in metric.samples
    }
    assert overhead["tokenway_proxy_overhead_seconds_count"] == 1


async def test_buffered_mode_routes_in_the_body_response(picker) -> None:
    server, _ = picker
    body = json.dumps(chat()).encode()
    responses = await exchange(
        server, [headers_message(BUFFERED), *body_messages(body, chunk=len(body))], 2
    )
    assert responses[0].WhichOneof("response") == "request_headers"
    assert not responses[0].request_headers.response.header_mutation.set_headers
    common = responses[1].request_body.response
    assert common.clear_route_cache
    assert "x-gateway-destination-endpoint" in set_headers(common)
    assert json.loads(common.body_mutation.body)["model"] == "served-m"


async def test_subset_hint_restricts_the_choice(picker) -> None:
    server, _ = picker
    body = json.dumps(chat()).encode()
    for _ in range(5):
        responses = await exchange(
            server, [headers_message(subset=["10.0.0.3:8001"]), *body_messages(body)], 2
        )
        headers = set_headers(responses[0].request_headers.response)
        assert headers["x-gateway-destination-endpoint"] == "10.0.0.3:8001"


@pytest.mark.parametrize(
    ("subset", "body", "status", "fragment"),
    [
        ([], json.dumps(chat()).encode(), 503, "no endpoints"),
        (["10.9.9.9:1"], json.dumps(chat()).encode(), 503, "no ready endpoint"),
        (None, b"{not json", 400, "not valid JSON"),
        (None, json.dumps(chat(model="nope")).encode(), 404, "nope"),
        (None, json.dumps(chat(content="y" * 400_000)).encode(), 413, "exceeds"),
    ],
)
async def test_rejections_are_immediate_openai_errors(
    picker, subset: list[str] | None, body: bytes, status: int, fragment: str
) -> None:
    server, _ = picker
    messages = [headers_message(subset=subset), *body_messages(body)]
    (response,) = await exchange(server, messages, 1)
    immediate = response.immediate_response
    assert immediate.status.code == status
    error = json.loads(immediate.body)["error"]
    assert fragment in error["message"]
    assert {"message", "type", "code"} <= error.keys()


async def test_request_without_body_is_decided_on_headers(picker) -> None:
    server, _ = picker
    (response,) = await exchange(server, [headers_message(end_of_stream=True)], 1)
    assert response.immediate_response.status.code == 400


def response_headers_message(
    status: bytes = b"200", content_type: bytes = b"application/json", end_of_stream: bool = False
) -> pb.ProcessingRequest:
    headers = [
        HeaderValue(key=":status", raw_value=status),
        HeaderValue(key="content-type", raw_value=content_type),
    ]
    return pb.ProcessingRequest(
        response_headers=pb.HttpHeaders(
            headers=HeaderMap(headers=headers), end_of_stream=end_of_stream
        )
    )


async def test_response_is_echoed_and_usage_settled(picker) -> None:
    server, gateway = picker
    body = json.dumps(chat(stream=True)).encode()
    events = [
        b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
    ]
    stream = b"".join(events)
    response_messages = [
        response_headers_message(content_type=b"text/event-stream"),
        # Split mid-event: the relay must still hand on whole events only.
        pb.ProcessingRequest(response_body=pb.HttpBody(body=stream[:30])),
        pb.ProcessingRequest(response_body=pb.HttpBody(body=stream[30:], end_of_stream=True)),
    ]
    messages = [headers_message(), *body_messages(body), *response_messages]
    responses = await exchange(server, messages, 5)
    relayed = [r.response_body.response.body_mutation.streamed_response for r in responses[3:]]
    assert relayed[-1].end_of_stream
    # The client did not ask for usage: the chunk the gateway requested is not passed on.
    assert b"".join(r.body for r in relayed) == events[0] + events[1] + events[3]
    assert token_usage(gateway)["output"] == 2


async def test_unsupported_body_mode_is_refused(picker) -> None:
    server, _ = picker
    (response,) = await exchange(server, [headers_message(ProcessingMode.STREAMED)], 1)
    assert response.immediate_response.status.code == 500


async def test_a_stream_closed_before_the_response_still_settles(picker) -> None:
    server, gateway = picker
    body = json.dumps(chat()).encode()
    responses = await exchange(server, [headers_message(), *body_messages(body)], 2)
    chosen = set_headers(responses[0].request_headers.response)["x-gateway-destination-endpoint"]
    url = "http://" + chosen.split(",")[0]
    # The stream ended (client gone): the endpoint's in-flight slot was given back.
    for _ in range(100):
        if all(s.in_flight == 0 for s in gateway.registry.snapshots("pool")):
            break
        await asyncio.sleep(0.01)
    assert {s.url: s.in_flight for s in gateway.registry.snapshots("pool")}[url] == 0
    assert set(request_statuses(gateway)) == {"499"}


async def test_objective_and_rewrite_headers_from_the_gateway_are_honoured() -> None:
    platform = config().model_dump(by_alias=True)
    platform["objectives"] = [{"name": "batch", "priority": -1}]
    async with running_picker(PlatformConfig.model_validate(platform)) as (server, gateway):
        body = json.dumps(chat()).encode()
        extra = {"x-gateway-model-name-rewrite": "served-m-v2"}
        routed = await exchange(server, [headers_message(**extra), *body_messages(body)], 2)
        rewritten = json.loads(
            b"".join(
                r.request_body.response.body_mutation.streamed_response.body for r in routed[1:]
            )
        )
        assert rewritten["model"] == "served-m-v2"
        for url in ENDPOINTS:  # every endpoint saturated: sheddable traffic gets 429
            gateway.registry.update_metrics(url, EndpointMetrics(waiting=50, scraped_at=NOW))
        extra = {"x-gateway-inference-objective": "batch"}
        (shed,) = await exchange(server, [headers_message(**extra), *body_messages(body)], 1)
        assert shed.immediate_response.status.code == 429


def stream_events(*texts: str, usage: tuple[int, int] | None = None) -> list[bytes]:
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":%s}}]}\n\n' % json.dumps(t).encode()
        for t in texts
    ]
    events.append(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    if usage is not None:
        prompt, completion = usage
        events.append(
            b'data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}\n\n'
            % (prompt, completion)
        )
    return [*events, b"data: [DONE]\n\n"]


def response_body(data: bytes, end_of_stream: bool = False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(response_body=pb.HttpBody(body=data, end_of_stream=end_of_stream))


def relayed_bytes(responses: Sequence[pb.ProcessingResponse]) -> bytes:
    return b"".join(
        r.response_body.response.body_mutation.streamed_response.body
        for r in responses
        if r.HasField("response_body")
    )


def token_usage(gateway: Gateway) -> dict[str, float]:
    return by_label(gateway, "gen_ai_client_token_usage_sum", "gen_ai_token_type")


def request_statuses(gateway: Gateway) -> dict[str, float]:
    return by_label(gateway, "tokenway_requests_total", "status")


@pytest.fixture
async def redacting_picker() -> AsyncIterator[tuple[EppServer, Gateway]]:
    platform = config().model_dump(by_alias=True)
    platform["processors"] = [{"name": "answers", "type": "pii", "phase": "response"}]
    async with running_picker(PlatformConfig.model_validate(platform)) as running:
        yield running


async def test_streamed_answers_pass_the_response_processors(redacting_picker) -> None:
    server, _ = redacting_picker
    body = json.dumps(chat(stream=True)).encode()
    # The address is split across two events: the processor holds back its start.
    stream = b"".join(stream_events("write to alice@exa", "mple.com today"))
    messages = [
        headers_message(),
        *body_messages(body),
        response_headers_message(content_type=b"text/event-stream"),
        response_body(stream[:40]),
        response_body(stream[40:], end_of_stream=True),
    ]
    responses = await exchange(server, messages, 5)
    relayed = relayed_bytes(responses[3:])
    assert b"alice" not in relayed and b"example.com" not in relayed
    texts = [
        json.loads(line[5:])["choices"][0]["delta"]["content"]
        for line in relayed.split(b"\n")
        if line.startswith(b"data: {")
    ]
    assert "".join(texts).startswith("write to ") and "today" in "".join(texts)


async def test_a_json_answer_is_held_whole_and_filtered(redacting_picker) -> None:
    server, gateway = redacting_picker
    body = json.dumps(chat()).encode()
    answer = json.dumps(
        {
            "choices": [{"index": 0, "message": {"content": "mail bob@example.com now"}}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 5},
        }
    ).encode()
    messages = [
        headers_message(),
        *body_messages(body),
        response_headers_message(),
        response_body(answer[:20]),
        response_body(answer[20:], end_of_stream=True),
    ]
    # Headers answered only once the whole answer was seen, then the filtered body.
    responses = await exchange(server, messages, 4)
    assert [r.WhichOneof("response") for r in responses[2:]] == [
        "response_headers",
        "response_body",
    ]
    filtered = relayed_bytes(responses[2:])
    assert b"bob@example.com" not in filtered
    length = set_headers(responses[2].response_headers.response)["content-length"]
    assert int(length) == len(filtered)
    assert token_usage(gateway) == {"input": 4, "output": 5}


async def test_a_stream_cut_short_is_charged_what_was_generated(picker) -> None:
    server, gateway = picker
    body = json.dumps(chat(stream=True)).encode()
    events = stream_events("a", "b", "c", "d")
    messages = [
        headers_message(),
        *body_messages(body),
        response_headers_message(content_type=b"text/event-stream"),
        response_body(b"".join(events[:3])),
    ]
    await exchange(server, messages, 4)  # Envoy closes the stream before the answer ended
    for _ in range(100):
        if request_statuses(gateway):
            break
        await asyncio.sleep(0.01)
    assert request_statuses(gateway) == {"499": 1}
    assert token_usage(gateway)["output"] == 3


async def test_an_answer_ending_in_trailers_is_relayed_and_settled(picker) -> None:
    server, gateway = picker
    body = json.dumps(chat(stream=True)).encode()
    events = stream_events("a", "b", usage=(3, 2))
    stream = b"".join(events)[:-2]  # the last event is not terminated by a blank line
    messages = [
        headers_message(),
        *body_messages(body),
        response_headers_message(content_type=b"text/event-stream"),
        response_body(stream),
        pb.ProcessingRequest(response_trailers=pb.HttpTrailers()),
    ]
    responses = await exchange(server, messages, 6)
    assert responses[-1].HasField("response_trailers")
    relayed = relayed_bytes(responses[3:])
    assert relayed.endswith(b"data: [DONE]")
    assert token_usage(gateway) == {"input": 3, "output": 2}
    assert request_statuses(gateway) == {"200": 1}


async def test_buffered_body_before_request_trailers_is_decided(picker) -> None:
    server, _ = picker
    body = json.dumps(chat()).encode()
    # With trailers coming, Envoy sends the buffered body without end_of_stream and waits.
    messages = [
        headers_message(BUFFERED),
        pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=False)),
    ]
    responses = await exchange(server, messages, 2)
    routed = responses[1].request_body.response
    assert "x-gateway-destination-endpoint" in set_headers(routed)
