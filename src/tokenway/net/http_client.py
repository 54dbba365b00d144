"""A lean HTTP/1.1 client for model-server traffic: the gateway's upstream hop, scrapes, bench load.

Written instead of using aiohttp's client because that client was measured as the largest single
cost of a proxied request (about a third of the gateway's CPU against an instant backend, more
than the whole tokenway pipeline) and as the floor of the bench client (0.84 ms CPU per streamed
request). This one does only what those paths need: keep-alive pools per origin, one request at
a time per connection, bodies as bytes, responses parsed by httptools (llhttp, the parser behind
uvicorn) and handed over as they arrive, with read backpressure. No redirects, cookies, proxies
or decompression.

Timeouts cost one timer per connection, not one per read: a first-byte deadline until the
response headers arrive, then an idle check that re-arms itself from the time of the last byte.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 256 * 1024
"""Unread response bytes at which the socket stops being read (the reader is slower)."""
_LOW_WATER = 64 * 1024


class ClientError(Exception):
    """The exchange failed for a reason other than a timeout (which raises TimeoutError)."""


class ConnectError(ClientError):
    """No connection could be opened to the origin."""


class ConnectionClosed(ClientError):
    """The server closed the connection before the response was complete."""


class ProtocolError(ClientError):
    """The server's bytes are not valid HTTP/1.1."""


@lru_cache(maxsize=4096)
def _split(url: str) -> tuple[tuple[str, str, int], str, str]:
    """(origin, host header, path with query) of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), parts.netloc, path


def _head(method: str, host: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"header {name!r} contains a forbidden character")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


class Response:
    """Status and headers of an answer whose body is read with `read()` or `chunks()`.

    Always `close()` it (also after reading): a completely read body gives the connection back
    to the pool, anything else closes the connection.
    """

    __slots__ = ("_buffered", "_chunks", "_conn", "_done", "_error", "_waiter", "headers", "status")

    def __init__(self, conn: _Connection) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn: _Connection | None = conn
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def read(self) -> bytes:
        """The whole body."""
        parts = [chunk async for chunk in self.chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces as they arrive (everything buffered since the last piece at once)."""
        while True:
            if self._chunks:
                data = self._chunks.popleft() if len(self._chunks) == 1 else self._take_all()
                self._buffered -= len(data)
                conn = self._conn
                if conn is not None and conn.paused and self._buffered <= _LOW_WATER:
                    conn.resume()
                yield data
            elif self._error is not None:
                raise self._error
            elif self._done:
                return
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None

    def _take_all(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.response_closed(self._done and self._error is None)

    def _feed(self, data: bytes) -> bool:
        """Buffer body bytes; True when the reader has fallen far enough behind to stop reading."""
        self._chunks.append(data)
        self._buffered += len(data)
        self._wake()
        return self._buffered >= _HIGH_WATER

    def _finish(self) -> None:
        self._done = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done and self._error is None:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a transport, an httptools parser and the response in progress."""

    def __init__(self, pool: HttpClient, origin: tuple[str, str, int]) -> None:
        self._pool = pool
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: Response | None = None
        self._headers_ready: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_timeout: float | None = None
        self._last_data = 0.0
        self.idle_since = 0.0
        self.paused = False
        self.closed = False
        self._keep_alive = False
        self._until_close = False

    # exchange ---------------------------------------------------------------------------------

    async def exchange(
        self, head: bytes, body: bytes, first_byte: float | None, idle: float | None
    ) -> Response:
        response = Response(self)
        self._response = response
        self._keep_alive = False
        self._idle_timeout = idle
        self._headers_ready = self._loop.create_future()
        assert self._transport is not None
        self._transport.writelines((head, body))
        if first_byte is not None:
            self._timer = self._loop.call_later(first_byte, self._first_byte_expired)
        try:
            await self._headers_ready
        except BaseException:
            self._cancel_timer()
            self.abort()
            raise
        return response

    def response_closed(self, complete: bool) -> None:
        self._cancel_timer()
        self._response = None
        self._pool.slot_freed()
        if complete and self._keep_alive and not self.closed:
            if self.paused:  # a pooled connection must read: the next answer arrives on it
                self.resume()
            self._pool.release(self)
        else:
            self.abort()

    def resume(self) -> None:
        self.paused = False
        # The server's silence counts from now: while paused it was our reader that was slow.
        self._last_data = self._loop.time()
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def usable(self, now: float, expiry: float) -> bool:
        transport = self._transport
        return (
            not self.closed
            and transport is not None
            and not transport.is_closing()
            and now - self.idle_since < expiry
        )

    # timers -----------------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _first_byte_expired(self) -> None:
        self._timer = None
        self._error(TimeoutError("no response headers within the first-byte timeout"))

    def _idle_check(self) -> None:
        self._timer = None
        idle = self._idle_timeout
        if idle is None or self._response is None:
            return
        if self.paused:
            # Our reader is the slow side, not the server: silence does not count meanwhile.
            self._last_data = self._loop.time()
        silent = self._loop.time() - self._last_data
        if silent >= idle:
            self._error(TimeoutError(f"no response bytes for {idle:g}s"))
        else:
            self._timer = self._loop.call_later(idle - silent, self._idle_check)

    def _error(self, error: BaseException) -> None:
        ready = self._headers_ready
        if ready is not None and not ready.done():
            ready.set_exception(error)
        elif self._response is not None:
            self._response._fail(error)
        self.abort()

    # asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._response is None or self._response._done:
            self.abort()  # bytes nobody asked for: the connection cannot be trusted any more
            return
        self._last_data = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._error(ProtocolError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        response = self._response
        if response is not None and self._until_close and exc is None and not response._done:
            response._finish()  # the body was delimited by the end of the connection
        elif response is not None or (
            self._headers_ready is not None and not self._headers_ready.done()
        ):
            reason = f": {exc}" if exc else ""
            self._error(ConnectionClosed(f"the server closed the connection{reason}"))

    # httptools callbacks ----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._response.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        self._until_close = (
            "content-length" not in response.headers
            and "chunked" not in response.headers.get("transfer-encoding", "")
            and response.status not in (204, 304)
            and response.status >= 200
        )
        self._cancel_timer()
        if self._idle_timeout is not None:
            self._timer = self._loop.call_later(self._idle_timeout, self._idle_check)
        ready = self._headers_ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is not None and response._feed(body) and not self.paused:
            self.paused = True
            assert self._transport is not None
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        self._cancel_timer()
        if self._response is not None:
            self._response._finish()


class HttpClient:
    """Keep-alive connection pools per origin; use one per process (or per bench target)."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = 10.0,
        keepalive_expiry: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = None,
    ) -> None:
        """`max_connections` bounds the requests in flight (each holds its own connection);
        further requests wait for one to finish."""
        self.connect_timeout = connect_timeout
        # Below the 5 s keep-alive of uvicorn (vLLM) and aiohttp servers, so a pooled connection
        # is never one the server is about to close.
        self.keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        connect_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> Response:
        """Send one request and return once the response headers arrived.

        Raises ConnectError, ConnectionClosed, ProtocolError or TimeoutError.
        """
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        origin, host, path = _split(url)
        head = _head(method, host, path, headers or {}, len(body))
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        try:
            conn = self._pooled(origin) or await self._connect(origin, connect_timeout)
            return await conn.exchange(head, body, first_byte_timeout, idle_timeout)
        except BaseException:
            if slots is not None:
                slots.release()
            raise

    def slot_freed(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _pooled(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self.keepalive_expiry):
                return conn
            conn.abort()
        return None

    async def _connect(self, origin: tuple[str, str, int], limit: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(limit if limit is not None else self.connect_timeout):
                transport, conn = await loop.create_connection(
                    lambda: _Connection(self, origin), host, port, ssl=context
                )
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        conn.connection_made(transport)  # uvloop may call it only after returning
        return conn

    def release(self, conn: _Connection) -> None:
        if self._closed:
            conn.abort()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(conn.origin, []).append(conn)

    async def close(self) -> None:
        """Close every pooled connection; responses still open close their own."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
