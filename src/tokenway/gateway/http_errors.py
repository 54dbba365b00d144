"""Error answers of the standalone data plane: an OpenAI error body with the status and headers."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from tokenway.gateway.errors import GatewayError


def error_response(error: GatewayError, headers: Mapping[str, str] | None = None) -> web.Response:
    """`headers` (request id, rate-limit state) go first; the error's own win over them."""
    response = web.Response(
        status=error.status, body=error.body_bytes(), content_type="application/json"
    )
    response.headers.update(headers or {})
    response.headers.update(error.headers)
    return response
