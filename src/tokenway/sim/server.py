"""One live simulated vLLM replica: the OpenAI-compatible HTTP surface over a real-time engine."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import HttpVersion11, web

from tokenway.sim import exposition, tokenizer
from tokenway.sim.engine import EngineCore
from tokenway.sim.faults import Fault, FaultConfig, FaultInjector
from tokenway.sim.openai_api import (
    DONE,
    ApiError,
    ChunkWriter,
    Generation,
    completion_body,
    parse_generation,
    parse_json,
    resolve_model,
    usage,
)
from tokenway.sim.profiles import DEFAULT_MODEL, DEFAULT_PROFILE, get_profile
from tokenway.sim.realtime import RealtimeEngine, Sink
from tokenway.sim.request import SimRequest

_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    model: str = DEFAULT_MODEL
    loras: Sequence[str] = ()
    max_loras: int = 1
    profile: str = DEFAULT_PROFILE
    faults: FaultConfig = field(default_factory=FaultConfig)


def _error(exc: ApiError) -> web.Response:
    return web.Response(status=exc.status, body=exc.body(), content_type=_JSON)


class SimServer:
    """The aiohttp application of one replica; `start()` binds it, `stop()` releases it."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.config = config
        self.profile = get_profile(config.profile)
        self.engine = EngineCore(self.profile, max_loras=config.max_loras)
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.realtime = RealtimeEngine(self.engine, self.clock)
        self.faults = FaultInjector(config.faults, self.clock())
        self.adapters: dict[str, str] = {name: f"/adapters/{name}" for name in config.loras}
        self._ids = itertools.count()
        self._stepper: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._hung: asyncio.Future[None] = loop.create_future()
        self.url = ""
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load_lora)
        app.router.add_post("/v1/unload_lora_adapter", self._unload_lora)
        app.router.add_post("/tokenize", self._tokenize)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version", self._version)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._stepper = asyncio.create_task(self.realtime.run())
        # Cancelling the handler of a client that hung up is what aborts its request, freeing
        # its KV blocks and LoRA slot; aiohttp no longer does it by default.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port, backlog=1024)
        await self._site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if not self._hung.done():
            self._hung.set_result(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._stepper is not None:
            self._stepper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stepper
            self._stepper = None

    # -- faults -----------------------------------------------------------------------------

    async def _gate(self, counts: bool) -> web.Response | None:
        """Apply lifecycle faults; None means go on serving."""
        now = self.clock()
        verdict = self.faults.on_request(now) if counts else None
        fault = verdict.fault if verdict else self.faults.lifecycle(now)
        if fault is Fault.CRASH:
            await self._crash()
        if fault is Fault.HANG:
            await asyncio.shield(self._hung)
            raise web.HTTPServiceUnavailable()
        if not self.faults.ready(now):
            return _error(ApiError(503, "The server is starting up."))
        if verdict is not None and verdict.fault is Fault.ERROR:
            return _error(ApiError(self.config.faults.error_status, "Injected fault."))
        if verdict is not None and verdict.delay > 0:
            await asyncio.sleep(verdict.delay)
        return None

    async def _crash(self) -> None:
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()
        # Like a dead process, drop every open connection (in-flight streams included); their
        # handlers are cancelled and abort their requests.
        if self._runner is not None:
            for connection in self._runner.server.connections:
                if connection.transport is not None:
                    connection.transport.abort()
        raise web.HTTPServiceUnavailable()

    # -- generation -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        arrival = self.clock()
        if (gated := await self._gate(counts=True)) is not None:
            return gated
        try:
            body = parse_json(await request.read())
            gen = parse_generation(
                body, chat, self.config.model, self.adapters, self.profile.max_model_len
            )
        except ApiError as exc:
            return _error(exc)
        if self.profile.api_overhead_s > 0:
            await asyncio.sleep(self.profile.api_overhead_s)
        prefix = "chatcmpl" if chat else "cmpl"
        req = SimRequest(
            request_id=f"{prefix}-{next(self._ids)}",
            prompt=gen.prompt,
            max_tokens=gen.max_tokens,
            arrival=arrival,
            lora=gen.lora,
            finish_reason_at_max=gen.finish_reason_at_max,
            seed=gen.seed,
            requested_max_tokens=gen.requested_max_tokens,
        )
        sink = self.realtime.submit(req)
        try:
            if gen.stream:
                return await self._stream(request, gen, req, sink)
            while req.finish_reason is None:
                await sink.wait()
            return web.Response(body=self._final_body(gen, req), content_type=_JSON)
        finally:
            if req.finish_reason is None:
                self.realtime.abort(req.request_id)
            else:
                self.realtime.done(req.request_id)

    def _usage(self, req: SimRequest) -> dict[str, object]:
        return usage(req.num_prompt_tokens, req.num_output, req.num_cached_tokens or 0)

    def _final_body(self, gen: Generation, req: SimRequest) -> bytes:
        text = tokenizer.decode(gen.visible(tokenizer.filler(req.seed, 0, req.num_output), 0))
        reason = req.finish_reason or "abort"
        created = int(time.time())
        return completion_body(gen, req.request_id, created, text, reason, self._usage(req))

    async def _stream(
        self, request: web.Request, gen: Generation, req: SimRequest, sink: Sink
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = ChunkWriter(gen, req.request_id, int(time.time()))
        if first := chunks.first():
            await response.write(first)
        engine = self.engine
        sent = 0

        def take() -> bytes:
            """The frame of the tokens produced since the last one; empty past the stop string."""
            nonlocal sent
            produced = engine.num_output(req)
            if produced <= sent:
                return b""
            tokens = tokenizer.filler(req.seed, sent, produced - sent)
            visible = gen.visible(tokens, sent * tokenizer.TOKEN_BYTES)
            sent = produced
            return chunks.content(visible) if visible else b""

        # The first frame goes through aiohttp (it also sends the buffered headers); later
        # frames are written by the stepping loop itself, without waking this handler.
        while req.finish_reason is None:
            await sink.wait()
            if frame := take():
                await response.write(frame)
                break
        transport = request.transport
        chunked = request.version >= HttpVersion11

        def push() -> bool:
            if req.finish_reason is not None or transport is None or transport.is_closing():
                return False
            if frame := take():
                transport.write(b"%x\r\n%b\r\n" % (len(frame), frame) if chunked else frame)
            return True

        sink.push = push
        while req.finish_reason is None:
            if transport is None or transport.is_closing():
                return response
            await sink.wait()
        tail = take() + chunks.finish(req.finish_reason)
        if gen.include_usage:
            tail += chunks.usage(self._usage(req))
        await response.write(tail + DONE)
        await response.write_eof()
        return response

    # -- other endpoints --------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        base = self.config.model
        data = [_model_card(base, created, base, None, self.profile.max_model_len)]
        data += [
            _model_card(name, created, path, base, self.profile.max_model_len)
            for name, path in self.adapters.items()
        ]
        return web.json_response({"object": "list", "data": data})

    async def _load_lora(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
            name, path = body.get("lora_name"), body.get("lora_path")
            if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
                raise ApiError(400, "Both 'lora_name' and 'lora_path' must be provided.")
            if name in self.adapters:
                raise ApiError(400, f"The lora adapter '{name}' has already been loaded.")
        except ApiError as exc:
            return _error(exc)
        self.adapters[name] = path
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
            name = body.get("lora_name")
            if not isinstance(name, str) or not name:
                raise ApiError(400, "'lora_name' must be provided.")
            if name not in self.adapters:
                raise ApiError(404, f"The lora adapter '{name}' cannot be found.")
        except ApiError as exc:
            return _error(exc)
        del self.adapters[name]
        self.engine.loras.evict(name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    async def _tokenize(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
            resolve_model(body.get("model"), self.config.model, self.adapters)
            if "messages" in body:
                messages = body["messages"]
                if not isinstance(messages, list) or not all(
                    isinstance(m, Mapping) for m in messages
                ):
                    raise ApiError(400, "'messages' must be a list of objects.", "messages")
                text = tokenizer.render_chat(messages)
            elif isinstance(body.get("prompt"), str):
                text = body["prompt"]
            else:
                raise ApiError(400, "Either 'prompt' or 'messages' must be given.")
        except ApiError as exc:
            return _error(exc)
        tokens = tokenizer.encode(text)
        ids = tokenizer.token_ids(tokens)
        return web.json_response(
            {"count": len(ids), "max_model_len": self.profile.max_model_len, "tokens": ids}
        )

    async def _health(self, request: web.Request) -> web.Response:
        if (gated := await self._gate(counts=False)) is not None:
            return web.Response(status=gated.status)
        return web.Response()

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._gate(counts=False)
        text = exposition.render(self.engine, self.config.model, time.time())
        return web.Response(text=text, headers={"Content-Type": exposition.CONTENT_TYPE})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.0+tokenway.sim"})


def _model_card(
    name: str, created: int, root: str, parent: str | None, max_model_len: int
) -> dict[str, object]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
        "permission": [],
    }
