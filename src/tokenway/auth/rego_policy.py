"""An optional Rego policy, evaluated in process with regopy after the allow-lists.

The policy is a module of package `tokenway.authz`; the request is allowed only when
`data.tokenway.authz.allow` is exactly `true`. An optional string `reason` explains a denial.
Anything else (undefined, conflicts, evaluation errors, non-boolean allow) denies.
The input document is built by `policy_input` and documented in docs/access-and-limits.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import regopy

from tokenway.gateway.context import RequestContext

log = logging.getLogger(__name__)

QUERY = "data.tokenway.authz"
HIDDEN_HEADERS = frozenset(
    {"authorization", "x-api-key", "cookie", "proxy-authorization", "x-forwarded-client-cert"}
)
"""Credentials never reach the policy input (policies are code other people may log)."""


class PolicyError(Exception):
    """The policy file cannot be loaded."""


class RegoPolicy:
    __slots__ = ("_bundle", "_interpreter", "source")

    def __init__(self, path: str | Path) -> None:
        self.source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
            self._interpreter = regopy.Interpreter()
            # A failing built-in (to_number("abc")) must be an error, which denies; by default
            # it only leaves its rule undefined and a `default allow := true` would allow.
            self._interpreter.strict_built_in_errors = True
            self._interpreter.add_module(Path(path).name, text)
            self._bundle = self._interpreter.build(QUERY, [QUERY])
        except (OSError, regopy.RegoError) as exc:
            raise PolicyError(f"{path}: cannot load Rego policy: {exc}") from None
        if not self._bundle.ok():
            raise PolicyError(f"{path}: Rego policy does not compile")

    def decide(self, document: Mapping[str, Any]) -> tuple[bool, str]:
        """(allowed, reason) for one input document."""
        try:
            self._interpreter.set_input_term(json.dumps(document))
            output = self._interpreter.query_bundle(self._bundle)
            if not output.ok():
                return False, "policy error"
            result = json.loads(output.expressions()[0].json())
        except (regopy.RegoError, ValueError, IndexError) as exc:
            log.warning("rego policy %s failed: %s", self.source, exc)
            return False, "policy error"
        if not isinstance(result, dict):
            return False, "policy error"
        reason = result.get("reason")
        reason = reason if isinstance(reason, str) and reason else None
        if result.get("allow") is True:
            return True, reason or "policy allows"
        return False, reason or "policy denies"


def policy_input(ctx: RequestContext) -> dict[str, Any]:
    principal = ctx.principal
    route = ctx.route
    return {
        "principal": {
            "team": principal.team if principal else None,
            "user": principal.user if principal else None,
            "method": principal.method if principal else None,
            "key_id": principal.key_id if principal else None,
            "labels": dict(principal.labels) if principal else {},
        },
        "operation": ctx.operation,
        "requested_model": ctx.model,
        "model": route.public_model if route else ctx.model,
        "upstream_model": route.upstream_model if route else None,
        "adapter": route.adapter if route else None,
        "pool": route.pool if route else None,
        "stream": ctx.stream,
        "estimated_tokens": {
            "prompt": ctx.prompt_tokens_estimate,
            "max_tokens": ctx.max_tokens,
        },
        "method": ctx.inbound.method,
        "path": ctx.inbound.path,
        "headers": {
            k.lower(): v for k, v in ctx.headers.items() if k.lower() not in HIDDEN_HEADERS
        },
    }
