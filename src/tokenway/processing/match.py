"""Which requests a processor applies to: globs on the model, the team and header values."""

from __future__ import annotations

import fnmatch
import re

from tokenway.config.processors import ProcessorMatch
from tokenway.gateway.context import RequestContext
from tokenway.gateway.router import canonical_model_name


def request_model(ctx: RequestContext) -> str:
    """The model as processors see it: the route's public name once routed, else the name
    asked for, in the router's canonical form. A client spelling the model "CHAT" or " chat"
    reaches the model `chat`, so it must meet the processors of `chat` too."""
    return canonical_model_name(ctx.route.public_model if ctx.route is not None else ctx.model)


def _globs(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


class Matcher:
    """All given conditions must hold; headers set by earlier processors count as sent."""

    def __init__(self, match: ProcessorMatch) -> None:
        self._model = _globs([canonical_model_name(glob) for glob in match.model])
        self._team = _globs(match.team)
        self._headers = [(name, _globs([glob])) for name, glob in match.headers.items()]
        self.everything = self._model is None and self._team is None and not self._headers

    def matches(self, ctx: RequestContext) -> bool:
        if self.everything:
            return True
        if self._model is not None and not self._model.match(request_model(ctx)):
            return False
        if self._team is not None:
            team = ctx.principal.team if ctx.principal is not None else "anonymous"
            if not self._team.match(team):
                return False
        for name, pattern in self._headers:
            value = ctx.upstream_headers.get(name, ctx.headers.get(name))
            if value is None or pattern is None or not pattern.match(value):
                return False
        return True
