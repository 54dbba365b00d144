"""Keys, tokens, certificates and request contexts for the auth tests, made fresh per test."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tokenway.auth.principal import Principal
from tokenway.gateway.context import InboundRequest, RequestContext, Route


@dataclass
class Signer:
    """An issuer's RSA key: signs tokens and publishes its JWKS."""

    kid: str
    key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return data | {"kid": self.kid, "use": "sig", "alg": "RS256"}

    def token(self, claims: Mapping[str, Any], **header: Any) -> str:
        now = int(time.time())
        body = {"iat": now, "exp": now + 300} | dict(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid} | header)


def new_signer(kid: str) -> Signer:
    return Signer(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps({"keys": [s.jwk() for s in signers]}))
    return path


@dataclass
class Pki:
    """A CA and certificates it issues, written as PEM files."""

    directory: Path
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def ca_file(self) -> Path:
        return self.directory / f"{self.name}-ca.pem"

    def issue(
        self, name: str, *, uris: tuple[str, ...] = (), dns: tuple[str, ...] = ()
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.DNSName(d) for d in dns]
        builder = _builder(name, key, self.cert.subject).add_extension(
            x509.SubjectAlternativeName(sans), critical=False
        )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file = self.directory / f"{name}.pem"
        key_file = self.directory / f"{name}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


def _builder(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
    )


def new_pki(directory: Path, name: str) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    cert = (
        _builder(f"{name} CA", key, subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pki = Pki(directory, name, key, cert)
    pki.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki


def inbound(
    headers: Mapping[str, str] | None = None,
    *,
    peer: str = "10.1.2.3:5555",
    uris: tuple[str, ...] = (),
) -> InboundRequest:
    return InboundRequest(
        method="POST",
        path="/v1/chat/completions",
        headers=dict(headers or {}),
        body=b"{}",
        peer=peer,
        peer_certificate_uris=uris,
    )


def context(
    principal: Principal,
    model: str,
    *,
    route: Route | None = None,
    operation: str = "chat",
    headers: Mapping[str, str] | None = None,
    max_tokens: int | None = 100,
    prompt_tokens: int = 10,
    request_id: str = "req-1",
) -> RequestContext:
    return RequestContext(
        request_id=request_id,
        operation=operation,
        inbound=inbound(headers),
        body={"model": model},
        received_at=0.0,
        model=model,
        max_tokens=max_tokens,
        prompt_tokens_estimate=prompt_tokens,
        principal=principal,
        route=route,
    )


@pytest.fixture
def signer() -> Signer:
    return new_signer("key-1")
