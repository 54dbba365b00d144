"""Test helpers: requests parsed by the real gateway parser, and chains built from platform YAML."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from tokenway.auth.principal import Principal
from tokenway.config.loader import parse_platform
from tokenway.gateway.context import InboundRequest, RequestContext
from tokenway.gateway.parse import parse_request
from tokenway.processing.chain import Chain
from tokenway.processing.factory import build_chain
from tokenway.processing.metrics import ProcessorMetrics


def request(
    body: Mapping[str, Any],
    *,
    team: str | None = None,
    headers: Mapping[str, str] | None = None,
    path: str = "/v1/chat/completions",
) -> RequestContext:
    inbound = InboundRequest("POST", path, dict(headers or {}), json.dumps(body).encode())
    ctx = parse_request(inbound, 0.0, 32 * 2**20)
    if team is not None:
        ctx.principal = Principal(team=team, method="api-key")
    return ctx


def fullwidth(text: str) -> str:
    """The full-width (compatibility) form of ASCII letters and digits."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


def chat(text: str, model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def chain_of(
    yaml_text: str,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] | None = None,
) -> Chain:
    config = parse_platform(yaml_text, "platform.yaml")
    registry = registry or CollectorRegistry()
    if clock is None:
        return build_chain(config, ProcessorMetrics(registry))
    return build_chain(config, ProcessorMetrics(registry), clock)
