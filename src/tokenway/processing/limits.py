"""The `limits` processor: request-shape limits that need no store.

Prompt tokens (the pipeline's estimate), number of messages, forbidden top-level parameters and a
max_tokens cap per team (`ctx.principal.team`), either clamped into the body or refused.
"""

from __future__ import annotations

from tokenway.config.processors import LimitsSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import PASS, Rejection, Verdict

_MAX_TOKENS_KEYS = ("max_completion_tokens", "max_tokens")


class LimitsProcessor:
    def __init__(self, spec: LimitsSpec) -> None:
        self._spec = spec
        self._forbidden = tuple(spec.forbidden_params)

    def process(self, ctx: RequestContext) -> Verdict:
        spec = self._spec
        if (
            spec.max_prompt_tokens is not None
            and ctx.prompt_tokens_estimate > spec.max_prompt_tokens
        ):
            raise Rejection(400, "max-prompt-tokens", f"at most {spec.max_prompt_tokens} tokens")
        messages = ctx.body.get("messages")
        if (
            spec.max_messages is not None
            and isinstance(messages, list)
            and len(messages) > spec.max_messages
        ):
            raise Rejection(400, "max-messages", f"at most {spec.max_messages} messages")
        for param in self._forbidden:
            if param in ctx.body:
                raise Rejection(400, "forbidden-param", f"parameter '{param}' is not allowed")
        caps = spec.max_tokens
        team = ctx.principal.team if ctx.principal is not None else "anonymous"
        cap = None if caps is None else caps.teams.get(team, caps.default)
        if caps is None or cap is None:
            return PASS
        key = next((k for k in _MAX_TOKENS_KEYS if k in ctx.body), "max_tokens")
        asked = ctx.body.get(key)
        if isinstance(asked, int) and asked <= cap:
            return PASS
        if asked is not None and caps.on_exceed == "reject":
            raise Rejection(400, "max-tokens", f"max_tokens is capped at {cap} for this team")
        return Verdict("mutate", f"max_tokens={cap}", body={**ctx.body, key: cap})
