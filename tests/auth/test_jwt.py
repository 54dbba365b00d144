from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from tests.auth.conftest import Signer, inbound, new_signer, write_jwks

from tokenway.auth.authenticator import Authenticator
from tokenway.auth.bearer_jwt import CACHE_TTL_S, Issuer, JwtVerifier, TokenRejected
from tokenway.auth.factory import build_authenticator
from tokenway.auth.jwks import JwksKeys
from tokenway.config.access import JwksSource, JwtProvider
from tokenway.config.loader import parse_platform
from tokenway.config.teams import JwtMatch
from tokenway.gateway.errors import GatewayError

ISSUER = "https://sso.example.test"


def authenticator_for(jwks: dict[str, Any], **access: Any) -> Authenticator:
    config = {
        "teams": [
            {"name": "search", "identities": {"jwt": {"issuer": ISSUER, "value": "search"}}},
            {
                "name": "ads",
                "identities": {"jwt": [{"issuer": ISSUER, "claim": "team", "value": "ads"}]},
            },
        ],
        "access": {
            "jwt": [{"issuer": ISSUER, "audience": "tokenway", "jwks": jwks, "userClaim": "email"}]
        }
        | access,
    }
    built = build_authenticator(parse_platform(yaml.safe_dump(config)))
    assert isinstance(built, Authenticator)
    return built


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "aud": "tokenway", "sub": "u-1", "email": "a@x"} | extra


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unsigned(header: dict[str, Any], body: dict[str, Any], hmac_key: bytes) -> str:
    """A token built by hand: alg none, or HS256 keyed with the issuer's public key (the classic
    algorithm-confusion forgery)."""
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(body).encode())
    signature = hmac.new(hmac_key, signing_input, hashlib.sha256).digest() if hmac_key else b""
    return (signing_input + b"." + _b64(signature)).decode()


def reason(authenticator: Authenticator, token: str) -> str:
    with pytest.raises(GatewayError) as caught:
        authenticator.authenticate(inbound({"authorization": f"Bearer {token}"}))
    assert caught.value.status == 401
    return caught.value.message


async def test_valid_token_maps_claim_to_team(tmp_path: Path, signer: Signer) -> None:
    auth = authenticator_for({"file": str(write_jwks(tmp_path / "k.json", signer))})
    await auth.start()
    try:
        principal = auth.authenticate(
            inbound({"authorization": f"Bearer {signer.token(claims(groups=['x', 'search']))}"})
        )
        assert (principal.team, principal.user, principal.method) == ("search", "a@x", "jwt")
        token = signer.token(claims(team="ads"))
        assert auth.authenticate(inbound({"x-api-key": token})).team == "ads"
        assert "belongs to no team" in reason(auth, signer.token(claims(groups=["other"])))
    finally:
        await auth.close()


async def test_forged_expired_and_foreign_tokens_are_refused(
    tmp_path: Path, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    auth = authenticator_for({"file": str(write_jwks(tmp_path / "k.json", signer))})
    await auth.start()
    caplog.set_level(logging.DEBUG)
    ok = claims(groups=["search"])
    now = int(time.time())
    other = new_signer("key-1")
    public_pem = signer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tokens = {
        "expired": signer.token(ok | {"exp": now - 120, "iat": now - 600}),
        "audience": signer.token(ok | {"aud": "someone-else"}),
        "issuer": signer.token(ok | {"iss": "https://evil.test"}),
        "signature": other.token(ok),
        "unknown key": signer.token(ok, kid="key-2"),
        "no exp": jwt.encode(ok, signer.key, algorithm="RS256", headers={"kid": "key-1"}),
        "alg none": unsigned({"alg": "none", "kid": "key-1"}, ok | {"exp": now + 60}, b""),
        "hmac with public key": unsigned(
            {"alg": "HS256", "kid": "key-1"}, ok | {"exp": now + 60}, public_pem
        ),
        "oversized": signer.token(ok | {"pad": "a" * 9000}),
        "garbage": "eyJhbGciOi.eyJzdWIi.sig",
    }
    expected = {
        "expired": "expired",
        "audience": "audience",
        "issuer": "issuer not accepted",
        "signature": "signature invalid",
        "unknown key": "unknown key",
        "no exp": "invalid",
        "alg none": "algorithm not accepted",
        "hmac with public key": "algorithm not accepted",
        "oversized": "too large",
        "garbage": "malformed",
    }
    try:
        for name, token in tokens.items():
            assert expected[name] in reason(auth, token), name
        for token in tokens.values():
            assert token not in caplog.text
    finally:
        await auth.close()


async def test_jwks_url_is_fetched_and_rotated_keys_are_picked_up(port: int) -> None:
    first, second = new_signer("k1"), new_signer("k2")
    published = {"keys": [first.jwk()]}
    fetches = 0

    async def jwks(_: web.Request) -> web.Response:
        nonlocal fetches
        fetches += 1
        return web.json_response(published)

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    auth = authenticator_for({"url": f"http://127.0.0.1:{port}/jwks", "refresh": "1h"})
    try:
        await auth.start()
        assert auth.authenticate(inbound({"x-api-key": first.token(claims(groups=["search"]))}))
        published = {"keys": [first.jwk(), second.jwk()]}
        rotated = second.token(claims(groups=["search"]))
        assert "unknown key" in reason(auth, rotated)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if fetches >= 2:
                break
        for _ in range(200):  # the fetch was counted; its keys land a moment later
            with contextlib.suppress(GatewayError):
                principal = auth.authenticate(inbound({"x-api-key": rotated}))
                break
            await asyncio.sleep(0.01)
        assert principal.team == "search"
        # A flood of unknown key ids triggers at most one early fetch per interval.
        for n in range(20):
            reason(auth, second.token(claims(groups=["search"]), kid=f"forged-{n}"))
        await asyncio.sleep(0.1)
        assert fetches == 2
    finally:
        await auth.close()
        await runner.cleanup()


async def test_cached_tokens_stop_working_soon_after_their_key_is_withdrawn(tmp_path: Path) -> None:
    signer, successor = new_signer("k1"), new_signer("k2")
    jwks_file = write_jwks(tmp_path / "k.json", signer)
    keys = JwksKeys(JwksSource(file=str(jwks_file)), time.monotonic)
    keys.load_file()
    now = [time.time()]
    verifier = JwtVerifier([Issuer(provider(jwks_file), keys, TEAMS)], None, 8192, lambda: now[0])
    token = signer.token(claims(groups=["search"]))
    assert verifier.principal(token).team == "search"
    write_jwks(jwks_file, successor)
    os.utime(jwks_file, (now[0] + 5, now[0] + 5))
    keys.load_file()
    assert verifier.principal(token).team == "search"  # still cached
    now[0] += CACHE_TTL_S + 1
    with pytest.raises(TokenRejected, match="unknown key"):
        verifier.principal(token)


def provider(jwks_file: Path) -> JwtProvider:
    return JwtProvider(issuer=ISSUER, audience="tokenway", jwks=JwksSource(file=str(jwks_file)))


TEAMS = (("search", JwtMatch(issuer=ISSUER, value="search")),)


async def test_odd_issuers_and_empty_subjects_are_refused(tmp_path: Path, signer: Signer) -> None:
    auth = authenticator_for({"file": str(write_jwks(tmp_path / "jwks.json", signer))})
    await auth.start()
    try:
        listed = unsigned({"alg": "RS256", "typ": "JWT"}, claims(iss=[ISSUER], exp=2**40), b"")
        assert "issuer not accepted" in reason(auth, listed)  # not a crash on an unhashable iss
        nobody = signer.token(claims(sub="", team="ads"))
        assert "no subject" in reason(auth, nobody)
    finally:
        await auth.close()
