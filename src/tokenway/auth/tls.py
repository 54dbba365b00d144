"""The mTLS listener's side of SPIFFE: an SSL context that verifies client X.509-SVIDs against a
trust bundle, and the URI SANs of the verified peer certificate."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from tokenway.config.tls import TlsSettings


def server_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """For `aiohttp.web.TCPSite(..., ssl_context=...)`; pass the peer's URI SANs (see
    `peer_uri_sans`) as `InboundRequest.peer_certificate_uris`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


def peer_uri_sans(peercert: Mapping[str, Any] | None) -> tuple[str, ...]:
    """URI SANs of `transport.get_extra_info("peercert")`, which is only filled for a
    certificate the context verified (empty or None otherwise)."""
    if not peercert:
        return ()
    return tuple(value for kind, value in peercert.get("subjectAltName", ()) if kind == "URI")
