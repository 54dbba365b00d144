"""The `cel` processor: operator rules in the Common Expression Language.

Each rule's `when` sees `body` (the parsed JSON body), `headers` (lower-case names), `model` and
`team`. Rules run in order; a true rule sets headers, chooses a model, or rejects with its own
message (the rule's text, never the request's). Expressions are compiled once, at load.
"""

from __future__ import annotations

from dataclasses import dataclass

import cel

from tokenway.config.processors import CelRule, CelSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import PASS, Rejection, Verdict
from tokenway.processing.match import request_model


class CelResultError(TypeError):
    """A rule's expression returned something other than a boolean."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: CelRule
    program: cel.Program


class CelProcessor:
    def __init__(self, spec: CelSpec) -> None:
        self._rules = [_Compiled(rule, cel.compile(rule.when)) for rule in spec.rules]

    def process(self, ctx: RequestContext) -> Verdict:
        activation = {
            "body": ctx.body,
            "headers": dict(ctx.headers),
            "model": request_model(ctx),
            "team": ctx.principal.team if ctx.principal is not None else "anonymous",
        }
        model: str | None = None
        headers: dict[str, str] = {}
        fired = []
        for compiled in self._rules:
            result = compiled.program.execute(activation)
            if not isinstance(result, bool):
                raise CelResultError(f"rule {compiled.rule.name!r} did not return a boolean")
            if not result:
                continue
            rule = compiled.rule
            fired.append(rule.name)
            if rule.reject is not None:
                raise Rejection(rule.reject.status, rule.name, rule.reject.message)
            if rule.model is not None:
                model = activation["model"] = rule.model
            headers.update(rule.set_headers)
        if not fired:
            return PASS
        note = "rules=" + "+".join(fired)
        if model is None or model == ctx.model:
            return Verdict("mutate" if headers else "pass", note, headers=headers)
        body = {**ctx.body, "model": model}
        return Verdict("route", note, body=body, model=model, headers=headers)
