"""Request body reassembly from ext_proc chunks, bounded so a client cannot exhaust memory."""

from __future__ import annotations

from tokenway.gateway.errors import GatewayError


class BodyBuffer:
    """Collects body chunks; refuses (413) as soon as the total passes the limit."""

    __slots__ = ("_chunks", "_limit", "_size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise GatewayError(
                413, f"request body exceeds {self._limit} bytes", code="request_too_large"
            )
        if chunk:
            self._chunks.append(chunk)

    def __len__(self) -> int:
        return self._size

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)
