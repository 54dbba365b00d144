"""The lean HTTP/1.1 client against real servers on 127.0.0.1: aiohttp, and raw asyncio servers
that misbehave on purpose (slow headers, stalls, garbage, early close, pipelined junk)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tokenway.net.http_client import (
    ConnectError,
    ConnectionClosed,
    HttpClient,
    ProtocolError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _aiohttp_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "body": body.decode(),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "peer": request.transport.get_extra_info("peername")[1],
            }
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for index in range(int(request.query.get("n", "3"))):
            await response.write(f"data: {index}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.query["size"]))

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/big", big)
    return app


@pytest.fixture
async def aiohttp_server(port: int) -> AsyncIterator[str]:
    runner = web.AppRunner(await _aiohttp_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class RawServer:
    """asyncio servers whose handlers misbehave on purpose; every connection closed at the end."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.handlers: list[asyncio.Task[None]] = []

    async def start(self, handler: Handler) -> str:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.handlers.append(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        self.servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        for server in self.servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    servers = RawServer()
    try:
        yield servers
    finally:
        await servers.stop()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


async def test_post_json_and_headers_reach_the_server(aiohttp_server: str) -> None:
    client = HttpClient()
    try:
        response = await client.request(
            "POST",
            aiohttp_server + "/echo?x=1",
            headers={"content-type": "application/json", "x-tenant": "team-a"},
            body=b'{"hello": "world"}',
        )
        assert response.status == 200
        assert response.content_type == "application/json"
        echoed = json.loads(await response.read())
        response.close()
    finally:
        await client.close()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo?x=1"
    assert echoed["body"] == '{"hello": "world"}'
    assert echoed["headers"]["x-tenant"] == "team-a"
    assert echoed["headers"]["host"] == aiohttp_server.removeprefix("http://")


async def test_keep_alive_reuses_one_connection(aiohttp_server: str) -> None:
    client = HttpClient()
    peers = set()
    try:
        for _ in range(5):
            response = await client.request("GET", aiohttp_server + "/echo")
            peers.add(json.loads(await response.read())["peer"])
            response.close()
    finally:
        await client.close()
    assert len(peers) == 1


async def test_expired_idle_connection_is_not_reused(aiohttp_server: str) -> None:
    client = HttpClient(keepalive_expiry=0.05)
    peers = []
    try:
        for _ in range(2):
            response = await client.request("GET", aiohttp_server + "/echo")
            peers.append(json.loads(await response.read())["peer"])
            response.close()
            await asyncio.sleep(0.1)
    finally:
        await client.close()
    assert peers[0] != peers[1]


async def test_unread_body_closes_the_connection_instead_of_pooling_it(aiohttp_server: str) -> None:
    client = HttpClient()
    try:
        first = await client.request("GET", aiohttp_server + "/big?size=1000000")
        first.close()
        response = await client.request("GET", aiohttp_server + "/echo")
        assert json.loads(await response.read())["method"] == "GET"
        response.close()
    finally:
        await client.close()


async def test_stream_arrives_in_pieces_as_sent(aiohttp_server: str) -> None:
    client = HttpClient()
    try:
        response = await client.request("GET", aiohttp_server + "/stream?n=5")
        pieces = [chunk async for chunk in response.chunks()]
        response.close()
    finally:
        await client.close()
    assert b"".join(pieces) == b"".join(f"data: {i}\n\n".encode() for i in range(5))
    assert len(pieces) >= 3  # relayed as they came, not buffered to the end


async def test_large_body_read_with_backpressure(aiohttp_server: str) -> None:
    client = HttpClient()
    size = 8 * 1024 * 1024
    try:
        response = await client.request("GET", aiohttp_server + f"/big?size={size}")
        total = 0
        async for chunk in response.chunks():
            total += len(chunk)
            await asyncio.sleep(0)
        response.close()
    finally:
        await client.close()
    assert total == size


async def test_connection_refused_is_a_connect_error(port: int) -> None:
    client = HttpClient()
    try:
        with pytest.raises(ConnectError):
            await client.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        await client.close()


async def test_first_byte_timeout(raw: RawServer) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    url = await raw.start(silent)
    client = HttpClient()
    try:
        with pytest.raises(TimeoutError):
            await client.request("GET", url + "/", first_byte_timeout=0.1)
    finally:
        await client.close()


async def test_idle_timeout_during_a_stalled_body(raw: RawServer) -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    url = await raw.start(stalls)
    client = HttpClient()
    try:
        response = await client.request("GET", url + "/", idle_timeout=0.2)
        received = []
        with pytest.raises(TimeoutError):
            async for chunk in response.chunks():
                received.append(chunk)
        response.close()
    finally:
        await client.close()
    assert received == [b"hello"]


async def test_chunked_and_close_delimited_bodies(raw: RawServer) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"ab", b"cde", b"f"):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await _read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    url = await raw.start(chunked)
    client = HttpClient()
    try:
        first = await client.request("GET", url + "/")
        assert await first.read() == b"abcdef"
        first.close()
        second = await client.request("GET", url + "/")
        assert await second.read() == b"until the end"
        second.close()
    finally:
        await client.close()


async def test_close_mid_body_is_connection_closed(raw: RawServer) -> None:
    async def cuts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    url = await raw.start(cuts)
    client = HttpClient()
    try:
        response = await client.request("GET", url + "/")
        with pytest.raises(ConnectionClosed):
            await response.read()
        response.close()
    finally:
        await client.close()


async def test_garbage_is_a_protocol_error(raw: RawServer) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    url = await raw.start(garbage)
    client = HttpClient()
    try:
        with pytest.raises(ProtocolError):
            await client.request("GET", url + "/")
    finally:
        await client.close()


async def test_bytes_after_the_response_poison_the_connection(raw: RawServer) -> None:
    served = 0

    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            await _read_request(reader)
            served += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK")
            await writer.drain()

    url = await raw.start(junk)
    client = HttpClient()
    try:
        for _ in range(3):
            response = await client.request("GET", url + "/")
            assert await response.read() == b"ok"
            response.close()
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    assert served == 3


async def test_header_injection_is_refused(aiohttp_server: str) -> None:
    client = HttpClient()
    try:
        with pytest.raises(ValueError, match="forbidden"):
            await client.request("GET", aiohttp_server + "/echo", headers={"x-a": "1\r\nx-b: 2"})
    finally:
        await client.close()


async def test_cancelled_request_frees_nothing_twice(aiohttp_server: str) -> None:
    client = HttpClient()
    try:
        task = asyncio.create_task(client.request("GET", aiohttp_server + "/stream?n=50"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await client.request("GET", aiohttp_server + "/echo")
        assert response.status == 200
        await response.read()
        response.close()
    finally:
        await client.close()


async def test_max_connections_bounds_requests_in_flight(aiohttp_server: str) -> None:
    client = HttpClient(max_connections=2)
    try:
        first = await client.request("GET", aiohttp_server + "/stream?n=2")
        second = await client.request("GET", aiohttp_server + "/stream?n=2")
        third = asyncio.create_task(client.request("GET", aiohttp_server + "/echo"))
        await asyncio.sleep(0.05)
        assert not third.done()
        await first.read()
        first.close()
        response = await asyncio.wait_for(third, 5)
        assert json.loads(await response.read())["method"] == "GET"
        response.close()
        second.close()
    finally:
        await client.close()


async def test_a_slow_reader_does_not_trip_the_idle_timeout(aiohttp_server: str) -> None:
    client = HttpClient()
    size = 4 * 1024 * 1024
    try:
        response = await client.request(
            "GET", aiohttp_server + f"/big?size={size}", idle_timeout=0.2
        )
        total = 0
        async for chunk in response.chunks():
            total += len(chunk)
            if total < 1024 * 1024:
                await asyncio.sleep(0.5)  # reading paused far longer than the idle timeout
        response.close()
    finally:
        await client.close()
    assert total == size


async def test_idle_time_restarts_when_a_paused_reader_resumes(raw: RawServer) -> None:
    # Exactly the high-water mark arrives, so reading pauses with nothing left in the kernel;
    # the reader resumes at 1.0 s and the server speaks again 0.3 s later, within the 0.4 s
    # idle timeout. The silence before resuming was the reader's and must not count.
    first = 256 * 1024

    async def gap_after_a_full_buffer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (first + 5))
        writer.write(b"x" * first)
        await writer.drain()
        await asyncio.sleep(1.3)
        writer.write(b"hello")
        await writer.drain()

    url = await raw.start(gap_after_a_full_buffer)
    client = HttpClient()
    try:
        response = await client.request("GET", url + "/", idle_timeout=0.4)
        await asyncio.sleep(1.0)
        body = await response.read()
        response.close()
    finally:
        await client.close()
    assert body == b"x" * first + b"hello"
