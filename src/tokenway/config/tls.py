"""`gateway.tls`: the listener's certificate and, for mTLS, the client trust bundle."""

from __future__ import annotations

from pydantic import model_validator

from tokenway.config.base import Section


class TlsSettings(Section):
    """Server certificate and key (PEM); `clientCa` (a SPIFFE trust bundle) turns on mTLS."""

    cert: str
    key: str
    client_ca: str | None = None
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _ca_for_required(self) -> TlsSettings:
        if self.require_client_cert and self.client_ca is None:
            raise ValueError("requireClientCert needs clientCa")
        return self
