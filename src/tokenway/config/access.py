"""The `access:` section: how callers are identified and what the authorizer does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from tokenway.config.base import Section
from tokenway.config.teams import TeamSpec
from tokenway.config.units import ByteSize, Duration


class JwksSource(Section):
    """Where signing keys come from: a JWKS file, or a URL fetched and refreshed."""

    file: str | None = None
    url: str | None = None
    refresh: Duration = 300.0
    """How often a URL is fetched again; an unknown key id also triggers a fetch."""

    @model_validator(mode="after")
    def _one_source(self) -> JwksSource:
        if (self.file is None) == (self.url is None):
            raise ValueError("a JWKS source gives exactly one of file or url")
        return self


class JwtProvider(Section):
    """An OIDC issuer whose tokens are accepted, checked against `audience`."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks: JwksSource
    user_claim: str = "sub"


class ForwardedClientCert(Section):
    """Trust `x-forwarded-client-cert` only from these peer addresses (the proxy in front)."""

    trusted_peers: list[str] = Field(min_length=1)


class JwtSvid(Section):
    """JWT-SVID bearer tokens: `sub` is the SPIFFE ID, `aud` must contain `audience`."""

    audience: str = Field(min_length=1)
    jwks: JwksSource


class SpiffeSettings(Section):
    trust_domains: list[str] = Field(min_length=1)
    forwarded_client_cert: ForwardedClientCert | None = None
    jwt_svid: JwtSvid | None = None


class AccessSettings(Section):
    """`default` decides teams without allow-lists; `anonymous` names the team of callers
    without credentials (none by default: they get 401)."""

    default: Literal["allow", "deny"] = "deny"
    anonymous: str | None = None
    rego: str | None = None
    """A Rego file with package tokenway.authz, evaluated after the allow-lists."""
    jwt: list[JwtProvider] = []
    spiffe: SpiffeSettings | None = None
    max_token_bytes: ByteSize = 8192
    """Longer bearer tokens are refused before any parsing."""


def identity_problems(teams: Sequence[TeamSpec], access: AccessSettings) -> list[str]:
    """Team identities that could never match under the `access:` settings."""
    problems = []
    issuers = {p.issuer for p in access.jwt}
    domains = set(access.spiffe.trust_domains) if access.spiffe else set()
    for team in teams:
        for match in team.identities.jwt_matches():
            if match.issuer not in issuers:
                problems.append(
                    f"teams: {team.name!r} names issuer {match.issuer!r} missing from access.jwt"
                )
        for pattern in team.identities.spiffe:
            domain = pattern.removeprefix("spiffe://").partition("/")[0]
            if domain not in domains:
                problems.append(
                    f"teams: {team.name!r} SPIFFE pattern {pattern!r} is outside "
                    "access.spiffe.trustDomains"
                )
    return problems
