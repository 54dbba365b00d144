"""The HTTP edge: one pooled HTTP client per target, streaming OpenAI requests, measured."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from tokenway.bench.datasets.text import estimate_tokens
from tokenway.bench.record import RequestRecord
from tokenway.bench.sse import DONE, SseSplitter, parse_chunk
from tokenway.bench.workload import WorkloadRequest
from tokenway.net.http_client import (
    ClientError,
    ConnectError,
    ConnectionClosed,
    HttpClient,
    Response,
)


@dataclass(frozen=True, slots=True)
class Target:
    """An OpenAI-compatible base URL (with or without /v1) and what to send with every request."""

    name: str
    url: str
    api_key: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def base(self) -> str:
        url = self.url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass(frozen=True, slots=True)
class ClientOptions:
    stream: bool = True
    timeout: float = 300.0
    """Seconds a request may take from send to last byte before it counts as a timeout."""
    max_connections: int = 4096
    tenant_header: str = "x-gateway-inference-fairness-id"
    ignore_eos: bool = True
    """Ask vLLM-style servers for exactly max_tokens, so output lengths follow the workload."""
    model: str = ""
    """The model for requests that do not name one; empty: the first one the target lists."""


def request_body(request: WorkloadRequest, options: ClientOptions, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model or model,
        "max_tokens": request.max_tokens,
        "stream": options.stream,
    }
    if request.messages:
        body["messages"] = list(request.messages)
    else:
        body["prompt"] = request.prompt
    if options.stream:
        body["stream_options"] = {"include_usage": True}
    if options.ignore_eos:
        body["ignore_eos"] = True
    return body


def _prompt_tokens(request: WorkloadRequest) -> int:
    if request.messages:
        return sum(estimate_tokens(m.get("content", "")) for m in request.messages)
    return estimate_tokens(request.prompt)


def _error_message(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error", {})
        return str(error.get("message", "")) if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


class BenchClient:
    """Sends workload requests to one target; failures become records, never exceptions.

    Times are seconds since `origin` on the monotonic clock the event loop sleeps on, so the
    scheduler's intended send times and the measured ones are directly comparable.
    """

    def __init__(self, target: Target, options: ClientOptions, origin: float) -> None:
        self.target = target
        self.options = options
        self.origin = origin
        self.model = options.model
        headers = {"Content-Type": "application/json", **dict(target.headers)}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        self._headers = headers
        self._client = HttpClient(max_connections=options.max_connections)
        self._chat_url = f"{target.base}/v1/chat/completions"
        self._completion_url = f"{target.base}/v1/completions"

    async def __aenter__(self) -> BenchClient:
        if not self.model:
            self.model = await self._served_model()
        return self

    async def _served_model(self) -> str:
        """The first model the target lists, so `--model` can be left out for one-model servers."""
        try:
            async with asyncio.timeout(min(10.0, self.options.timeout)):
                response = await self._client.request(
                    "GET", f"{self.target.base}/v1/models", headers=self._headers
                )
                try:
                    listing = orjson.loads(await response.read()) if response.status == 200 else {}
                finally:
                    response.close()
        except (ClientError, TimeoutError, ValueError):
            return ""
        models = listing.get("data") if isinstance(listing, dict) else None
        if isinstance(models, list) and models and isinstance(models[0], dict):
            return str(models[0].get("id", ""))
        return ""

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.close()

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def send(self, request: WorkloadRequest, stage: int, scheduled: float) -> RequestRecord:
        record = RequestRecord(
            stage=stage,
            target=self.target.name,
            group=request.group,
            model=request.model or self.model,
            scheduled=scheduled,
            start=self.now(),
            input_tokens=_prompt_tokens(request),
        )
        headers = {**self._headers, **dict(request.headers)}
        if request.tenant and request.tenant != "default":
            headers[self.options.tenant_header] = request.tenant
        url = self._chat_url if request.messages else self._completion_url
        data = orjson.dumps(request_body(request, self.options, self.model))
        try:
            async with asyncio.timeout(self.options.timeout):
                response = await self._client.request("POST", url, headers=headers, body=data)
                try:
                    await self._read_response(response, record)
                finally:
                    response.close()
        except TimeoutError:
            record.error = "timeout"
            record.error_message = f"no complete answer within {self.options.timeout:g}s"
        except (ConnectError, ConnectionClosed, OSError) as exc:
            record.error = "connection"
            record.error_message = str(exc) or type(exc).__name__
        except (ValueError, ClientError) as exc:
            record.error = "protocol"
            record.error_message = str(exc)[:200] or type(exc).__name__
        record.end = self.now()
        return record

    async def _read_response(self, response: Response, record: RequestRecord) -> None:
        record.status = response.status
        if response.status != 200:
            record.error = f"http_{response.status}"
            record.error_message = _error_message(await response.read())
        elif self.options.stream:
            await self._read_stream(response, record)
        else:
            self._read_body(orjson.loads(await response.read()), record)

    async def _read_stream(self, response: Response, record: RequestRecord) -> None:
        splitter = SseSplitter()
        usage: dict[str, Any] | None = None
        chunks = 0
        done = False
        async for data in response.chunks():
            arrived = self.now()
            for payload in splitter.feed(data):
                if payload == DONE:
                    done = True
                    continue
                chunk = parse_chunk(payload)
                if chunk.error is not None:
                    record.error = "stream_error"
                    record.error_message = chunk.error
                    return
                if chunk.tokens:
                    record.token_times.append(arrived)
                    chunks += 1
                if chunk.usage is not None:
                    usage = chunk.usage
        if not done:
            record.error = "incomplete_stream"
            record.error_message = "the stream ended without [DONE]"
        self._apply_usage(usage, chunks, record)

    def _read_body(self, body: Any, record: RequestRecord) -> None:
        if not isinstance(body, dict):
            raise ValueError("the response body is not a JSON object")
        self._apply_usage(body.get("usage"), 0, record)

    @staticmethod
    def _apply_usage(usage: Any, chunks: int, record: RequestRecord) -> None:
        if isinstance(usage, dict):
            record.input_tokens = int(usage.get("prompt_tokens") or record.input_tokens)
            record.output_tokens = int(usage.get("completion_tokens") or chunks)
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict):
                record.cached_tokens = int(details.get("cached_tokens") or 0)
        else:
            record.output_tokens = chunks
