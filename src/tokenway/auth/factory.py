"""Builds the authentication and authorization stages from the platform file.

With no teams (and no Rego policy) both stages are open: every caller is the anonymous principal
and may use every model, which is what the embedded default needs.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from tokenway.auth.apikeys import ApiKeyIndex, KeyEntry
from tokenway.auth.authenticator import Authenticator, OpenAuthenticator
from tokenway.auth.authorizer import Authorizer, OpenAuthorizer, TeamAccess
from tokenway.auth.bearer_jwt import Issuer, JwtVerifier, SvidIssuer
from tokenway.auth.canonical import NameGlobs, PathGlobs
from tokenway.auth.jwks import JwksKeys
from tokenway.auth.metrics import AuthenticationMetrics, AuthorizationMetrics
from tokenway.auth.rego_policy import RegoPolicy
from tokenway.auth.spiffe import SpiffeTeams
from tokenway.config.platform import PlatformConfig


def build_authenticator(
    config: PlatformConfig,
    metrics: AuthenticationMetrics | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Authenticator | OpenAuthenticator:
    """Call `await authenticator.start()` before serving and `close()` at shutdown (JWKS).

    `metrics` is created once per registry (`AuthenticationMetrics(registry)`) and passed to
    every rebuild on reload; without it the series are not registered anywhere."""
    if not config.teams:
        return OpenAuthenticator()
    access = config.access
    keys = ApiKeyIndex(
        KeyEntry(team.name, key.label, key.sha256)
        for team in config.teams
        for key in team.identities.api_keys
    )
    spiffe = None
    if access.spiffe is not None:
        spiffe = SpiffeTeams(
            access.spiffe.trust_domains,
            [(t.name, PathGlobs(t.identities.spiffe)) for t in config.teams if t.identities.spiffe],
        )
    jwks: list[JwksKeys] = []
    issuers = []
    for provider in access.jwt:
        provider_keys = JwksKeys(provider.jwks, clock)
        jwks.append(provider_keys)
        teams = tuple(
            (team.name, match)
            for team in config.teams
            for match in team.identities.jwt_matches()
            if match.issuer == provider.issuer
        )
        issuers.append(Issuer(provider, provider_keys, teams))
    svid = None
    if access.spiffe is not None and access.spiffe.jwt_svid is not None and spiffe is not None:
        svid_keys = JwksKeys(access.spiffe.jwt_svid.jwks, clock)
        jwks.append(svid_keys)
        svid = SvidIssuer(access.spiffe.jwt_svid.audience, svid_keys, spiffe)
    verifier = JwtVerifier(issuers, svid, access.max_token_bytes) if issuers or svid else None
    xfcc = access.spiffe.forwarded_client_cert if access.spiffe else None
    return Authenticator(
        api_keys=keys,
        jwt=verifier,
        spiffe=spiffe,
        xfcc_peers=[ipaddress.ip_network(p, strict=False) for p in xfcc.trusted_peers]
        if xfcc
        else [],
        anonymous_team=access.anonymous,
        jwks=jwks,
        metrics=metrics or AuthenticationMetrics(None),
    )


def build_authorizer(
    config: PlatformConfig, metrics: AuthorizationMetrics | None = None
) -> Authorizer | OpenAuthorizer:
    """Raises PolicyError when the Rego file cannot be read or compiled. `metrics`: as for
    build_authenticator."""
    access = config.access
    if not config.teams and access.rego is None:
        return OpenAuthorizer()
    teams = {
        team.name: TeamAccess(
            models=NameGlobs(team.models),
            adapters=NameGlobs(team.adapters) if team.adapters is not None else None,
            operations=NameGlobs(team.operations),
        )
        for team in config.teams
    }
    return Authorizer(
        teams,
        default_allow=access.default == "allow" or not config.teams,
        policy=RegoPolicy(access.rego) if access.rego else None,
        metrics=metrics or AuthorizationMetrics(None),
    )
