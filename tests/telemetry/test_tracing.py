"""Spans over real OTLP/gRPC into a collector on 127.0.0.1, from requests through the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc
from tests.gateway.conftest import platform, running_gateway

from tokenway.config.platform import PlatformConfig

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Collector(otlp_grpc.TraceServiceServicer):
    """An OTLP trace receiver: keeps every exported span."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.arrived = asyncio.Event()

    async def Export(self, request: otlp.ExportTraceServiceRequest, context: Any) -> Any:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        self.arrived.set()
        return otlp.ExportTraceServiceResponse()

    async def wait_for(self, count: int) -> list[Any]:
        async with asyncio.timeout(15):
            while len(self.spans) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.spans


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    server = grpc.aio.server()
    receiver = Collector()
    otlp_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        await server.stop(grace=0)


@pytest.fixture
async def model_server() -> AsyncIterator[tuple[list[str], str]]:
    """A model server that answers one fixed completion and records each traceparent."""
    seen: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent", ""))
        body = await request.json()
        return web.json_response(
            {
                "id": "c1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield seen, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def traced_platform(upstream: str, **otlp: Any) -> PlatformConfig:
    config = platform([upstream]).model_dump(by_alias=True)
    config["observability"] = {"otlp": otlp}
    config["pools"][0]["engine"] = "openai"  # a plain OpenAI server: no metrics to scrape
    return PlatformConfig.model_validate(config)


def attributes(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


async def test_request_span_follows_genai_conventions_and_propagates(
    collector: tuple[Collector, str], model_server: tuple[list[str], str]
) -> None:
    receiver, endpoint = collector
    seen, upstream = model_server
    async with running_gateway(traced_platform(upstream, endpoint=endpoint)) as gw:
        sdk = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
        await sdk.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=5,
            extra_headers={"traceparent": CALLER},
        )
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "x"}]
            )
        await sdk.close()
    spans = await receiver.wait_for(2)  # the gateway's stop flushed them
    ok, missing = sorted(spans, key=lambda s: s.start_time_unix_nano)
    assert ok.name == "chat chat"
    assert ok.trace_id.hex() == TRACE_ID and ok.parent_span_id.hex() == "00f067aa0ba902b7"
    got = attributes(ok)
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.request.model"] == "chat"
    assert got["gen_ai.response.model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert (got["gen_ai.usage.input_tokens"], got["gen_ai.usage.output_tokens"]) == (7, 3)
    assert got["gen_ai.request.max_tokens"] == 5
    assert got["server.address"] == "127.0.0.1"
    assert got["http.response.status_code"] == 200
    # The model server saw this span as its parent, in the caller's trace.
    assert seen == [f"00-{TRACE_ID}-{ok.span_id.hex()}-01"], seen
    failed = attributes(missing)
    assert failed["http.response.status_code"] == 404
    assert missing.status.code == 2  # STATUS_CODE_ERROR


async def test_sampling_keeps_callers_sampled_traces_only(
    collector: tuple[Collector, str], model_server: tuple[list[str], str]
) -> None:
    receiver, endpoint = collector
    seen, upstream = model_server
    async with running_gateway(traced_platform(upstream, endpoint=endpoint, sampleRatio=0)) as gw:
        sdk = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
        messages = [{"role": "user", "content": "hello"}]
        await sdk.chat.completions.create(model="chat", messages=messages)
        await sdk.chat.completions.create(
            model="chat", messages=messages, extra_headers={"traceparent": CALLER}
        )
        await sdk.close()
    (span,) = await receiver.wait_for(1)
    assert span.trace_id.hex() == TRACE_ID
    unsampled, sampled = seen
    sampled_bit = [int(header.rsplit("-", 1)[1], 16) & 1 for header in (unsampled, sampled)]
    assert sampled_bit == [0, 1]
    assert len(receiver.spans) == 1
