"""Authentication: request credentials -> principal, or 401.

Credentials are tried in this order: an `Authorization: Bearer` or `x-api-key` header (an API
key, an OIDC JWT or a JWT-SVID), the verified mTLS client certificate (X.509-SVID), the
x-forwarded-client-cert header when the peer is a trusted proxy, and finally the anonymous team
when one is configured. Presented but invalid credentials never fall back to anonymous.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence

import jwt

from tokenway.auth.apikeys import ApiKeyIndex
from tokenway.auth.bearer_jwt import JwtVerifier, TokenRejected, looks_like_jwt
from tokenway.auth.jwks import JwksKeys
from tokenway.auth.metrics import AuthenticationMetrics
from tokenway.auth.principal import ANONYMOUS, Principal
from tokenway.auth.spiffe import SpiffeTeams, xfcc_uris
from tokenway.gateway.context import InboundRequest
from tokenway.gateway.errors import GatewayError

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OpenAuthenticator:
    """No teams configured: everyone is the anonymous principal (the embedded default)."""

    def authenticate(self, request: InboundRequest) -> Principal:
        return ANONYMOUS

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Authenticator:
    def __init__(
        self,
        *,
        api_keys: ApiKeyIndex,
        jwt: JwtVerifier | None,
        spiffe: SpiffeTeams | None,
        xfcc_peers: Sequence[IpNetwork],
        anonymous_team: str | None,
        jwks: Sequence[JwksKeys],
        metrics: AuthenticationMetrics,
    ) -> None:
        self._api_keys = api_keys
        self._jwt = jwt
        self._spiffe = spiffe
        self._xfcc_peers = tuple(xfcc_peers)
        self._anonymous = Principal(team=anonymous_team) if anonymous_team else None
        self._jwks = tuple(jwks)
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load signing keys once (so the first tokens verify) and keep refreshing them."""
        for keys in self._jwks:
            try:
                await keys.refresh()
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                log.warning("jwks not loaded from %s: %s", keys.source.file or keys.source.url, exc)
        self._tasks = [asyncio.create_task(keys.run()) for keys in self._jwks]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def authenticate(self, request: InboundRequest) -> Principal:
        method, result = self._identify(request)
        if isinstance(result, Principal):
            self._metrics.authenticated(method)
            return result
        self._metrics.rejected(method, result)
        log.info("authentication failed: method=%s reason=%s peer=%s", method, result, request.peer)
        raise GatewayError(401, f"Unauthorized: {result}", "invalid_credentials")

    def _identify(self, request: InboundRequest) -> tuple[str, Principal | str]:
        headers = request.headers
        if "authorization" in headers or "x-api-key" in headers:
            return self._bearer(headers)
        if request.peer_certificate_uris:
            return "spiffe", self._svid(request.peer_certificate_uris, "spiffe")
        if "x-forwarded-client-cert" in headers and self._trusted_proxy(request.peer):
            uris = xfcc_uris(headers["x-forwarded-client-cert"])
            return "spiffe", self._svid(tuple(uris), "spiffe-xfcc")
        if self._anonymous is not None:
            return "anonymous", self._anonymous
        return "none", "credentials required (Authorization: Bearer or x-api-key)"

    def _bearer(self, headers: Mapping[str, str]) -> tuple[str, Principal | str]:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return "bearer", "Authorization must be 'Bearer <token>'"
            token = token.strip()
        else:
            token = headers.get("x-api-key", "").strip()
        # Repeated headers arrive joined by commas, which no key or token contains: ambiguous
        # credentials are refused, never picked by position.
        if "," in token or ("authorization" in headers and "x-api-key" in headers):
            return "bearer", "send exactly one credential (one Authorization or x-api-key)"
        if looks_like_jwt(token):
            if self._jwt is None:
                return "jwt", "JWT bearer tokens are not accepted here"
            try:
                return "jwt", self._jwt.principal(token)
            except TokenRejected as exc:
                return "jwt", str(exc)
        found = self._api_keys.principal(token)
        return "api-key", found if found is not None else "unknown API key"

    def _svid(self, uris: tuple[str, ...], method: str) -> Principal | str:
        if self._spiffe is None:
            return "SPIFFE identities are not accepted here"
        if len(uris) != 1:
            return "an X.509-SVID carries exactly one URI SAN"
        return self._spiffe.principal(uris[0], method)

    def _trusted_proxy(self, peer: str) -> bool:
        address = _peer_address(peer)
        return address is not None and any(address in net for net in self._xfcc_peers)


def _peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = peer
    if peer.startswith("["):
        host = peer[1:].partition("]")[0]
    elif peer.count(":") == 1:
        host = peer.partition(":")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address
