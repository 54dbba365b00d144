"""Decision latency of the tokenway picker over ext_proc, at 500 and 2,000 requests/s.

A gRPC client plays Envoy (BUFFERED mode: request headers and the whole body, then the
response headers and body) against two servers, each in its own process:
  null-picker   an ext_proc server that answers with a fixed destination (the gRPC floor)
  tokenway      the real picker: parse, route, admission, scheduling over scraped endpoints
Requests arrive open loop (a fixed schedule, not waiting for answers). Decision latency is
from sending the body to receiving the routing answer. A tiny chat request is used; its
prompt is unique per request so the prefix index keeps working.
Writes benchmarks/results/epp_decision_latency.json.
Run: .venv/bin/python benchmarks/epp_decision_latency.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from envoy.config.core.v3.base_pb2 import HeaderMap, HeaderValue
from envoy.extensions.filters.http.ext_proc.v3.processing_mode_pb2 import ProcessingMode
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from epp_common import backend_main, child, free_port, picker_main, platform, summary

OUT = Path(__file__).parent / "results" / "epp_decision_latency.json"
RATES = (500, 2000)
SECONDS = 3.0
CLIENTS = 4
BUFFERED = ProcessingMode.BUFFERED


class NullPicker(pb_grpc.ExternalProcessorServicer):
    """Answers like a picker that always names the same endpoint, doing no work."""

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: Any
    ) -> AsyncIterator[pb.ProcessingResponse]:
        async for message in request_iterator:
            kind = message.WhichOneof("request")
            if kind == "request_headers":
                yield pb.ProcessingResponse(request_headers=pb.HeadersResponse())
            elif kind == "request_body":
                common = pb.CommonResponse(clear_route_cache=True)
                header = common.header_mutation.set_headers.add().header
                header.key, header.raw_value = "x-gateway-destination-endpoint", b"10.0.0.1:8000"
                yield pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))
            elif kind == "response_headers":
                yield pb.ProcessingResponse(response_headers=pb.HeadersResponse())
            elif kind == "response_body":
                yield pb.ProcessingResponse(response_body=pb.BodyResponse())


async def _null(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_ExternalProcessorServicer_to_server(NullPicker(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def null_main(port: int) -> None:
    asyncio.run(_null(port))


def _headers() -> pb.ProcessingRequest:
    pairs = {":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json"}
    return pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(
            headers=HeaderMap(
                headers=[HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()]
            )
        ),
        protocol_config=pb.ProtocolConfiguration(
            request_body_mode=BUFFERED, response_body_mode=BUFFERED
        ),
    )


RESPONSE = [
    pb.ProcessingRequest(
        response_headers=pb.HttpHeaders(
            headers=HeaderMap(headers=[HeaderValue(key=":status", raw_value=b"200")])
        )
    ),
    pb.ProcessingRequest(
        response_body=pb.HttpBody(
            body=b'{"choices":[{"message":{"content":"ok"}}],'
            b'"usage":{"prompt_tokens":3,"completion_tokens":1}}',
            end_of_stream=True,
        )
    ),
]


async def _one(stub: pb_grpc.ExternalProcessorStub, i: int) -> float:
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": f"question {i}: " + "x" * 200}]}
    ).encode()
    call = stub.Process()
    await call.write(_headers())
    await call.read()
    started = time.perf_counter()
    await call.write(pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True)))
    answer = await call.read()
    latency = time.perf_counter() - started
    if answer.WhichOneof("response") != "request_body":
        raise RuntimeError(f"unexpected answer: {answer}")
    for message in RESPONSE:
        await call.write(message)
        await call.read()
    await call.done_writing()
    return latency


async def _client(port: int, rate: float, offset: int) -> tuple[list[float], int, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalProcessorStub(channel)
        await asyncio.gather(*(_one(stub, -offset - i) for i in range(20)))  # warm up
        total = int(rate * SECONDS)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(stub, offset + i)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - start
    latencies = [r for r in results if isinstance(r, float)]
    return latencies, len(results) - len(latencies), elapsed


def client_main(port: int, rate: float, offset: int, out: Any) -> None:
    out.put(asyncio.run(_client(port, rate, offset)))


def _run(port: int, rate: int) -> dict[str, Any]:
    """CLIENTS processes share the offered rate, so one Python client is not the bottleneck."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    share = rate / CLIENTS
    processes = [
        context.Process(target=client_main, args=(port, share, 1_000_000 * (k + 1), out))
        for k in range(CLIENTS)
    ]
    for process in processes:
        process.start()
    parts = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(10)
    latencies = [value for part in parts for value in part[0]]
    stats = summary(latencies)
    stats["errors"] = sum(part[1] for part in parts)
    stats["offered_rps"] = rate
    stats["achieved_rps"] = sum(len(part[0]) + part[1] for part in parts) / max(
        part[2] for part in parts
    )
    return stats


async def main() -> None:
    backend_ports = [free_port() for _ in range(3)]
    picker_port, null_port = free_port(), free_port()
    config = platform(backend_ports).model_dump(by_alias=True)
    result: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(child(backend_main, backend_ports, port=backend_ports[0]))
        stack.enter_context(child(picker_main, config, picker_port, free_port(), port=picker_port))
        stack.enter_context(child(null_main, null_port, port=null_port))
        await asyncio.sleep(1)  # the picker's first scrapes
        for rate in RATES:
            for name, port in (("null-picker", null_port), ("tokenway", picker_port)):
                result.setdefault(f"{rate}rps", {})[name] = await asyncio.to_thread(
                    _run, port, rate
                )
                print(rate, name, result[f"{rate}rps"][name], flush=True)
            row = result[f"{rate}rps"]
            row["added_p50_ms"] = row["tokenway"]["p50_ms"] - row["null-picker"]["p50_ms"]
            row["added_p99_ms"] = row["tokenway"]["p99_ms"] - row["null-picker"]["p99_ms"]
    result["setup"] = {
        "seconds_per_rate": SECONDS,
        "note": "client and servers share a 2-core machine with other work",
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
