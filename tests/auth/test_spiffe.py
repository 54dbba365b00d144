from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.auth.conftest import Signer, inbound, new_pki, new_signer, write_jwks

from tokenway.auth.authenticator import Authenticator
from tokenway.auth.canonical import PathGlobs
from tokenway.auth.factory import build_authenticator
from tokenway.auth.spiffe import trust_domain, xfcc_uris
from tokenway.auth.tls import peer_uri_sans, server_ssl_context
from tokenway.config.loader import parse_platform
from tokenway.config.tls import TlsSettings
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.headers import merged_headers

SEARCH = "spiffe://acme.internal/ns/search/sa/indexer"


def authenticator(**spiffe: Any) -> Authenticator:
    config = {
        "teams": [
            {"name": "search", "identities": {"spiffe": ["spiffe://acme.internal/ns/search/sa/*"]}},
            {"name": "ops", "identities": {"spiffe": ["spiffe://acme.internal/ns/ops/**"]}},
        ],
        "access": {"spiffe": {"trustDomains": ["acme.internal"]} | spiffe},
    }
    built = build_authenticator(parse_platform(yaml.safe_dump(config)))
    assert isinstance(built, Authenticator)
    return built


def refused(auth: Authenticator, **request: Any) -> str:
    with pytest.raises(GatewayError) as caught:
        auth.authenticate(inbound(**request))
    assert caught.value.status == 401
    return caught.value.message


def test_x509_svid_uri_maps_to_team() -> None:
    auth = authenticator()
    principal = auth.authenticate(inbound(uris=(SEARCH,)))
    assert (principal.team, principal.user, principal.method) == ("search", SEARCH, "spiffe")
    deep = "spiffe://acme.internal/ns/ops/sa/deploy/x"
    assert auth.authenticate(inbound(uris=(deep,))).team == "ops"


@pytest.mark.parametrize(
    ("uris", "why"),
    [
        (("spiffe://evil.internal/ns/search/sa/indexer",), "untrusted trust domain"),
        (("spiffe://acme.internal.evil.com/ns/search/sa/x",), "untrusted trust domain"),
        (("spiffe://acme.internal/ns/search/sa/x/y",), "no team"),
        (("spiffe://acme.internal/ns/search/sa/../../ops/sa/x",), "malformed"),
        (("spiffe://ACME.internal/ns/search/sa/x",), "malformed"),
        (("spiffe://acme.internal:443/ns/search/sa/x",), "malformed"),
        ((SEARCH, "spiffe://acme.internal/ns/ops/sa/x"), "exactly one URI"),
    ],
)
def test_svids_outside_the_trust_domain_or_patterns_are_refused(
    uris: tuple[str, ...], why: str
) -> None:
    assert why in refused(authenticator(), uris=uris)


def test_segment_globs() -> None:
    globs = PathGlobs(["spiffe://a.b/ns/*/sa/web", "spiffe://a.b/x/**"])
    assert globs.match("spiffe://a.b/ns/shop/sa/web")
    assert not globs.match("spiffe://a.b/ns/shop/extra/sa/web")
    assert globs.match("spiffe://a.b/x/y/z")
    assert not globs.match("spiffe://a.bc/x/y")
    assert trust_domain("spiffe://a.b/x/./y") is None


def test_forwarded_client_cert_only_from_trusted_proxies() -> None:
    auth = authenticator(forwardedClientCert={"trustedPeers": ["127.0.0.1", "10.9.0.0/16"]})
    xfcc = f'By=spiffe://acme.internal/gw;Hash=abc;Subject="CN=a,O=b";URI={SEARCH}'
    headers = {"x-forwarded-client-cert": xfcc}
    assert auth.authenticate(inbound(headers, peer="127.0.0.1:4000")).team == "search"
    assert auth.authenticate(inbound(headers, peer="10.9.3.4")).team == "search"
    assert "credentials required" in refused(auth, headers=headers, peer="10.1.2.3:5555")
    assert "credentials required" in refused(authenticator(), headers=headers, peer="127.0.0.1:1")


def test_xfcc_parsing_uses_the_nearest_element_and_respects_quotes() -> None:
    header = 'URI=spiffe://x/a,By=b;Subject="CN=x,O=y;z";URI=spiffe://x/b'
    assert xfcc_uris(header) == ["spiffe://x/b"]
    assert xfcc_uris("") == []


async def test_jwt_svid_bearer(tmp_path: Path) -> None:
    signer: Signer = new_signer("svid")
    jwks = {"file": str(write_jwks(tmp_path / "bundle.json", signer))}
    auth = authenticator(jwtSvid={"audience": "tokenway", "jwks": jwks})
    await auth.start()
    try:
        token = signer.token({"sub": SEARCH, "aud": ["tokenway", "other"]})
        principal = auth.authenticate(inbound({"authorization": f"Bearer {token}"}))
        assert (principal.team, principal.method) == ("search", "jwt-svid")
        foreign = signer.token({"sub": "spiffe://evil.internal/ns/search/sa/x", "aud": "tokenway"})
        assert "untrusted" in refused(auth, headers={"authorization": f"Bearer {foreign}"})
        wrong_aud = signer.token({"sub": SEARCH, "aud": "elsewhere"})
        assert "audience" in refused(auth, headers={"authorization": f"Bearer {wrong_aud}"})
    finally:
        await auth.close()


async def test_mtls_listener_verifies_svids_against_the_trust_bundle(
    tmp_path: Path, port: int
) -> None:
    trusted, foreign = new_pki(tmp_path, "acme"), new_pki(tmp_path, "evil")
    server_cert, server_key = trusted.issue("gateway", dns=("localhost",))
    context = server_ssl_context(
        TlsSettings(
            cert=str(server_cert),
            key=str(server_key),
            client_ca=str(trusted.ca_file),
            require_client_cert=True,
        )
    )
    seen: list[tuple[str, ...]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(peer_uri_sans(writer.get_extra_info("peercert")))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)

    async def connect(issuer_name: str, uri: str) -> bytes:
        pki = trusted if issuer_name == "acme" else foreign
        cert, key = pki.issue(f"client-{issuer_name}", uris=(uri,))
        client = ssl.create_default_context(cafile=str(trusted.ca_file))
        client.load_cert_chain(str(cert), str(key))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        try:
            return await reader.read()
        finally:
            writer.close()

    try:
        assert await connect("acme", SEARCH) == b"ok"
        assert seen == [(SEARCH,)]
        assert authenticator().authenticate(inbound(uris=seen[0])).team == "search"
        try:
            answer = await connect("evil", SEARCH)
        except (ssl.SSLError, ConnectionResetError):
            answer = b""
        # TLS 1.3 reports the refused client certificate after the client's handshake ends.
        assert answer == b""
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()


def test_a_client_written_xfcc_line_cannot_shadow_the_proxys() -> None:
    auth = authenticator(forwardedClientCert={"trustedPeers": ["10.9.0.0/16"]})
    spoofed = "URI=spiffe://acme.internal/ns/ads/sa/evil"
    headers = merged_headers(
        [("x-forwarded-client-cert", spoofed), ("X-Forwarded-Client-Cert", f"URI={SEARCH}")]
    )
    assert auth.authenticate(inbound(headers, peer="10.9.0.7")).team == "search"


def test_ipv4_mapped_peers_match_ipv4_trusted_networks() -> None:
    auth = authenticator(forwardedClientCert={"trustedPeers": ["10.9.0.0/16"]})
    headers = {"x-forwarded-client-cert": f"URI={SEARCH}"}
    assert auth.authenticate(inbound(headers, peer="::ffff:10.9.3.4")).team == "search"
