"""A minimal OpenAI-compatible model server for the picker tests.

It answers from its own address and records what it received (the destination list Envoy was
given, the upstream model and body size), so a test can tell which endpoint served a request
and fail it on demand. The conformance checks are about the wire, not the model; the simulated
fleet is used where a model server's behaviour matters (test_extproc_payloads.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

VLLM_METRICS = """\
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="m"}} {waiting}
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="m"}} {running}
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{model_name="m"}} 0.1
"""


@dataclass(slots=True)
class Received:
    destination: str
    model: str
    body_bytes: int
    stream: bool


@dataclass(slots=True)
class Backend:
    host: str
    port: int
    fail_with: int | None = None
    """Answer completions with this status (the endpoint is up but failing)."""
    received: list[Received] = field(default_factory=list)
    running: int = 0
    _runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_post("/v1/completions", self._complete)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=VLLM_METRICS.format(waiting=0, running=self.running))

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        stream = bool(body.get("stream"))
        self.received.append(
            Received(
                request.headers.get("x-gateway-destination-endpoint", ""),
                body.get("model", ""),
                len(raw),
                stream,
            )
        )
        headers = {"x-served-by": self.address}
        if self.fail_with is not None:
            return web.json_response(
                {"error": {"message": "failing", "type": "x", "code": None}},
                status=self.fail_with,
                headers=headers,
            )
        self.running += 1
        try:
            if stream:
                return await self._stream(request, body, headers)
            return web.json_response(
                {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hello there"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
                },
                headers=headers,
            )
        finally:
            self.running -= 1

    async def _stream(
        self, request: web.Request, body: dict[str, object], headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)
        words = ["one", " two", " three", " four"]
        for word in words:
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 11}
            chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
