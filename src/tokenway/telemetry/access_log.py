"""One JSON line per request on the `tokenway.access` logger; never keys, tokens or prompts."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from tokenway.gateway.context import RequestContext
from tokenway.gateway.errors import GatewayError

if TYPE_CHECKING:
    from tokenway.gateway.pipeline import ForwardOutcome

logger = logging.getLogger("tokenway.access")


def _base(ctx: RequestContext, duration: float) -> dict[str, object]:
    route = ctx.route
    principal = ctx.principal
    return {
        "request_id": ctx.request_id,
        "operation": ctx.operation,
        "model": ctx.model,
        "pool": route.pool if route else None,
        "target": route.upstream_model if route else None,
        "team": principal.team if principal else None,
        "duration_ms": round(duration * 1000, 3),
    }


class AccessLog:
    """Writes the access log when enabled; the check is up front so a disabled log costs nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def completed(self, ctx: RequestContext, outcome: ForwardOutcome, duration: float) -> None:
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        line = _base(ctx, duration)
        usage = outcome.usage
        line.update(
            status=outcome.status,
            endpoint=outcome.endpoint_url,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            ttft_ms=None if outcome.ttft is None else round(outcome.ttft * 1000, 3),
            retries=outcome.retries,
            error=outcome.error,
            client_gone=outcome.client_gone or None,
        )
        if ctx.annotations:
            line["decisions"] = ctx.annotations
        logger.info(json.dumps(line, separators=(",", ":")))

    def rejected(self, ctx: RequestContext, error: GatewayError, duration: float) -> None:
        if not self.enabled or not logger.isEnabledFor(logging.INFO):
            return
        line = _base(ctx, duration)
        line.update(status=error.status, error=error.code or error.error_type)
        if ctx.annotations:
            line["decisions"] = ctx.annotations
        logger.info(json.dumps(line, separators=(",", ":")))
