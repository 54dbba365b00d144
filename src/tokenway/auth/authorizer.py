"""Authorization: may this principal use the resolved route for this operation? 403 otherwise.

The allow-lists are checked against the resolved route (the configured public model name and its
adapter), not the raw string the client sent, after canonicalisation (see canonical.py); then the
optional Rego policy decides. Each decision is logged with its reason and recorded in
ctx.annotations["authz"] for the access log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from tokenway.auth.canonical import NameGlobs
from tokenway.auth.metrics import AuthorizationMetrics
from tokenway.auth.principal import ANONYMOUS
from tokenway.auth.rego_policy import RegoPolicy, policy_input
from tokenway.gateway.context import RequestContext
from tokenway.gateway.errors import GatewayError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TeamAccess:
    models: NameGlobs
    adapters: NameGlobs | None
    operations: NameGlobs


class OpenAuthorizer:
    """No teams and no policy configured: everything is allowed (the embedded default)."""

    def authorize(self, ctx: RequestContext) -> None:
        ctx.annotations["authz"] = "open"

    def lists_model(self, team: str, model: str) -> bool:
        return True


class Authorizer:
    __slots__ = ("_default_allow", "_metrics", "_policy", "_teams")

    def __init__(
        self,
        teams: Mapping[str, TeamAccess],
        *,
        default_allow: bool,
        policy: RegoPolicy | None,
        metrics: AuthorizationMetrics,
    ) -> None:
        self._teams = dict(teams)
        self._default_allow = default_allow
        self._policy = policy
        self._metrics = metrics

    def authorize(self, ctx: RequestContext) -> None:
        team = (ctx.principal or ANONYMOUS).team
        allowed, code, reason = self._allow_lists(ctx, team)
        if allowed and self._policy is not None:
            allowed, reason = self._policy.decide(policy_input(ctx))
            code = "policy"
        ctx.annotations["authz"] = reason
        self._metrics.decided(team, allowed, code)
        if allowed:
            log.debug("authz allow team=%s model=%s reason=%s", team, _model(ctx), reason)
            return
        log.info(
            "authz deny team=%s model=%s operation=%s reason=%s",
            team,
            _model(ctx),
            ctx.operation,
            reason,
        )
        raise GatewayError(403, f"Forbidden: {reason}", "access_denied")

    def lists_model(self, team: str, model: str) -> bool:
        access = self._teams.get(team)
        return self._default_allow if access is None else access.models.match(model)

    def _allow_lists(self, ctx: RequestContext, team: str) -> tuple[bool, str, str]:
        access = self._teams.get(team)
        if access is None:
            if self._default_allow:
                return True, "default", "no rules for team; default allow"
            return False, "default", f"team {team!r} has no access"
        if not access.operations.match(ctx.operation):
            return False, "operation", f"operation {ctx.operation!r} not allowed for team {team!r}"
        model = _model(ctx)
        if not access.models.match(model):
            return False, "model", f"model {model!r} not allowed for team {team!r}"
        adapter = ctx.route.adapter if ctx.route else None
        if (
            adapter is not None
            and access.adapters is not None
            and not access.adapters.match(adapter)
        ):
            return False, "adapter", f"adapter {adapter!r} not allowed for team {team!r}"
        return True, "allow-list", f"team {team!r} may use {model!r}"


def _model(ctx: RequestContext) -> str:
    return ctx.route.public_model if ctx.route is not None else ctx.model
