"""Shared parts of the epp_* benchmarks: an instant model server, the picker, the standalone
gateway and Envoy, each in its own process, plus an open-loop and a closed-loop load client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import multiprocessing
import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
from aiohttp import web

from tokenway.config.platform import PlatformConfig

METRICS = (
    "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 0\n"
    "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0\n"
    "# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc 0.1\n"
)
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":4}}\n\n'
REPLY = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def _instant_backend(ports: list[int]) -> None:
    """A model server that costs nothing: what is measured is the data plane in front of it."""

    async def complete(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        if not body.get("stream"):
            return web.json_response(REPLY)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(4):
            await response.write(CHUNK)
        await response.write(USAGE + b"data: [DONE]\n\n")
        return response

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=METRICS)

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.Event().wait()


def backend_main(ports: list[int]) -> None:
    asyncio.run(_instant_backend(ports))


def platform(backend_ports: list[int], **picker: str) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "gateway": {"accessLog": False, "maxRequestBytes": "4Mi"},
            "pools": [
                {
                    "name": "pool",
                    "endpoints": [f"http://127.0.0.1:{p}" for p in backend_ports],
                    "saturation": {"staleAfter": "2s", "queueDepth": 1000},
                }
            ],
            "models": [{"name": "m", "pool": "pool"}],
            "picker": picker or {},
        }
    )


async def _picker(config: dict[str, Any], port: int, health_port: int) -> None:
    from tokenway.gateway.extproc.server import start_epp
    from tokenway.gateway.gateway import Gateway

    gateway = Gateway(PlatformConfig.model_validate(config))
    await gateway.start()
    server = await start_epp(gateway.pipeline, ("127.0.0.1", port), ("127.0.0.1", health_port))
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop(grace=0)


def picker_main(config: dict[str, Any], port: int, health_port: int) -> None:
    # grpc.aio runs on the default asyncio loop (it does not support uvloop).
    asyncio.run(_picker(config, port, health_port))


async def _standalone(config: dict[str, Any], port: int) -> None:
    from tokenway.gateway.gateway import Gateway
    from tokenway.gateway.run import start_listener

    gateway = Gateway(PlatformConfig.model_validate(config))
    await gateway.start()
    runner, _ = await start_listener(gateway, "127.0.0.1", port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def standalone_main(config: dict[str, Any], port: int) -> None:
    import uvloop

    uvloop.run(_standalone(config, port))


@contextlib.contextmanager
def child(target: Any, *args: Any, port: int) -> Iterator[multiprocessing.Process]:
    """Run target(*args) in its own process until the block ends (stopped by its PID)."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    try:
        wait_port(port)
        yield process
    finally:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


async def closed_loop(
    url: str, body: bytes, requests: int, concurrency: int, *, stream: bool
) -> list[float]:
    """Seconds to the first body byte (TTFT for streams, whole latency otherwise)."""
    timings: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                async with session.post(
                    f"{url}/v1/chat/completions",
                    data=io.BytesIO(body),
                    headers={"content-type": "application/json"},
                ) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{url}: status {response.status}")
                    if stream:
                        await response.content.readany()
                        timings.append(time.perf_counter() - started)
                        await response.read()
                    else:
                        await response.read()
                        timings.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings


def chat_body(prompt_bytes: int, *, stream: bool) -> bytes:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x" * prompt_bytes}],
        "max_tokens": 4,
        "stream": stream,
    }
    return json.dumps(body).encode()
