"""Bearer JWTs: OIDC tokens of configured issuers, and JWT-SVIDs, verified against cached JWKS.

Only asymmetric algorithms are accepted (never `none` or HMAC, so a public key can never be used
as a shared secret), tokens must carry exp and aud, and oversized tokens are refused unparsed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from tokenway.auth.jwks import JwksKeys
from tokenway.auth.principal import Principal
from tokenway.auth.spiffe import SpiffeTeams
from tokenway.config.access import JwtProvider
from tokenway.config.teams import JwtMatch

ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_S = 30
CACHE_SIZE = 4096
CACHE_TTL_S = 60.0


class TokenRejected(Exception):
    """A token that does not identify anyone; the message is safe to show and log."""


@dataclass(frozen=True, slots=True)
class Issuer:
    provider: JwtProvider
    keys: JwksKeys
    teams: tuple[tuple[str, JwtMatch], ...]


@dataclass(frozen=True, slots=True)
class SvidIssuer:
    audience: str
    keys: JwksKeys
    spiffe: SpiffeTeams


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JwtVerifier:
    """Verifies bearer JWTs; a verified token is remembered (bounded, at most CACHE_TTL_S and
    never past its exp), so a client's repeated token costs a lookup, not a signature check."""

    __slots__ = ("_cache", "_clock", "_issuers", "_max_bytes", "_svid")

    def __init__(
        self,
        issuers: Sequence[Issuer],
        svid: SvidIssuer | None,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {i.provider.issuer: i for i in issuers}
        self._svid = svid
        self._max_bytes = max_bytes
        self._clock = clock
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def principal(self, token: str) -> Principal:
        if len(token) > self._max_bytes:
            raise TokenRejected("token too large")
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(token)
            return cached[0]
        principal, expires = self._verify(token)
        self._cache[token] = (principal, min(expires, now + CACHE_TTL_S))
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("malformed token") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRejected("token algorithm not accepted")
        claimed = unverified.get("iss")
        issuer = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if issuer is not None:
            claims = _decode(
                token, issuer.keys, header, issuer.provider.audience, issuer.provider.issuer
            )
            return _oidc_principal(claims, issuer), float(claims["exp"])
        subject = unverified.get("sub")
        if self._svid is not None and isinstance(subject, str) and subject.startswith("spiffe://"):
            claims = _decode(token, self._svid.keys, header, self._svid.audience, None)
            found = self._svid.spiffe.principal(claims["sub"], method="jwt-svid")
            if isinstance(found, str):
                raise TokenRejected(found)
            return found, float(claims["exp"])
        raise TokenRejected("token issuer not accepted")


def _decode(
    token: str, keys: JwksKeys, header: Mapping[str, Any], audience: str, issuer: str | None
) -> dict[str, Any]:
    key = keys.key(header.get("kid"))
    if key is None:
        raise TokenRejected("token signed by an unknown key")
    required = ["exp", "aud", "sub"] + (["iss"] if issuer else [])
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("token expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("token audience not accepted") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("token signature invalid") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenRejected("token invalid") from None


def _subject(claims: Mapping[str, Any]) -> str:
    """The subject keys per-credential limits: an empty one would share one bucket."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("token has no subject")
    return subject


def _oidc_principal(claims: Mapping[str, Any], issuer: Issuer) -> Principal:
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    for team, match in issuer.teams:
        if match.audience is not None and match.audience not in audiences:
            continue
        value = claims.get(match.claim)
        if value == match.value or (isinstance(value, list) and match.value in value):
            user = claims.get(issuer.provider.user_claim)
            return Principal(
                team=team,
                user=str(user) if user is not None else None,
                method="jwt",
                key_id=_subject(claims),
                labels={"issuer": issuer.provider.issuer},
            )
    raise TokenRejected("token belongs to no team")
