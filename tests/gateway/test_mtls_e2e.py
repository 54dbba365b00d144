"""SPIFFE over mTLS through the standalone gateway: the client's X.509-SVID picks the team."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
import yaml
from tests.auth.conftest import new_pki
from tests.gateway.conftest import BASE, running_fleet

from tokenway.auth.tls import server_ssl_context
from tokenway.config.loader import parse_platform
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_listener

SEARCH = "spiffe://acme.internal/ns/search/sa/indexer"
ADS = "spiffe://acme.internal/ns/ads/sa/web"


async def test_svid_identifies_the_team_and_its_allow_list_applies(tmp_path: Path) -> None:
    trusted = new_pki(tmp_path, "acme")
    server_cert, server_key = trusted.issue("gateway", dns=("localhost",))
    async with running_fleet(1) as fleet:
        config = parse_platform(
            yaml.safe_dump(
                {
                    "gateway": {
                        "listen": "127.0.0.1:0",
                        "tls": {
                            "cert": str(server_cert),
                            "key": str(server_key),
                            "clientCa": str(trusted.ca_file),
                            "requireClientCert": True,
                        },
                    },
                    "pools": [{"name": "sim", "endpoints": fleet.urls}],
                    "models": [{"name": "chat", "pool": "sim", "model": BASE}],
                    "teams": [
                        {
                            "name": "search",
                            "identities": {"spiffe": ["spiffe://acme.internal/ns/search/sa/*"]},
                            "models": ["chat"],
                        },
                        {
                            "name": "ads",
                            "identities": {"spiffe": ["spiffe://acme.internal/ns/ads/**"]},
                            "models": ["nothing-*"],
                        },
                    ],
                    "access": {"spiffe": {"trustDomains": ["acme.internal"]}},
                }
            )
        )
        assert config.gateway.tls is not None
        gateway = Gateway(config)
        await gateway.start()
        runner, port = await start_listener(
            gateway, "127.0.0.1", 0, server_ssl_context(config.gateway.tls)
        )
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}

        async def status(spiffe_id: str | None) -> int:
            client = ssl.create_default_context(cafile=str(trusted.ca_file))
            if spiffe_id is not None:
                cert, key = trusted.issue(spiffe_id.rsplit("/", 1)[1], uris=(spiffe_id,))
                client.load_cert_chain(str(cert), str(key))
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"https://localhost:{port}/v1/chat/completions", json=body, ssl=client
                ) as resp,
            ):
                return resp.status

        try:
            assert await status(SEARCH) == 200
            assert await status(ADS) == 403  # identified as ads, whose allow-list excludes chat
            with pytest.raises(aiohttp.ClientError):
                await status(None)  # no client certificate: the handshake is refused
        finally:
            await runner.cleanup()
            await gateway.stop()
