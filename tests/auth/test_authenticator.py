from __future__ import annotations

import logging

import pytest
import yaml
from tests.auth.conftest import inbound

from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.auth.factory import build_authenticator
from tokenway.auth.principal import ANONYMOUS
from tokenway.config.loader import parse_platform
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.headers import merged_headers


def platform(keys: dict[str, str], access: dict[str, object] | None = None) -> PlatformConfig:
    teams = [
        {
            "name": team,
            "identities": {"apiKeys": [{"sha256": hash_key(key), "label": f"{team}-ci"}]},
        }
        for team, key in keys.items()
    ]
    return parse_platform(yaml.safe_dump({"teams": teams, "access": access or {}}))


def rejected(authenticator: object, headers: dict[str, str]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        authenticator.authenticate(inbound(headers))  # type: ignore[attr-defined]
    assert caught.value.status == 401
    assert caught.value.body()["error"]["type"] == "authentication_error"  # type: ignore[index]
    return caught.value


def test_no_teams_is_open_whatever_is_sent() -> None:
    authenticator = build_authenticator(PlatformConfig())
    assert authenticator.authenticate(inbound()) is ANONYMOUS
    assert authenticator.authenticate(inbound({"authorization": "Bearer junk"})) is ANONYMOUS


def test_api_key_in_bearer_or_x_api_key_names_the_team() -> None:
    search, ads = generate_key(), generate_key()
    authenticator = build_authenticator(platform({"search": search, "ads": ads}))
    principal = authenticator.authenticate(inbound({"authorization": f"Bearer {search}"}))
    assert (principal.team, principal.method, principal.key_id) == (
        "search",
        "api-key",
        "search-ci",
    )
    assert authenticator.authenticate(inbound({"x-api-key": ads})).team == "ads"
    assert authenticator.authenticate(inbound({"authorization": f"bearer  {ads} "})).team == "ads"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer tw-unknown"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer "},
        {"x-api-key": ""},
    ],
)
def test_missing_unknown_or_malformed_credentials_are_401(headers: dict[str, str]) -> None:
    authenticator = build_authenticator(platform({"search": generate_key()}))
    rejected(authenticator, headers)


def test_anonymous_only_without_credentials_and_only_when_configured() -> None:
    key = generate_key()
    authenticator = build_authenticator(platform({"search": key}, {"anonymous": "public"}))
    assert authenticator.authenticate(inbound()).team == "public"
    rejected(authenticator, {"authorization": "Bearer tw-wrong"})
    assert authenticator.authenticate(inbound({"x-api-key": key})).team == "search"


def test_keys_never_reach_logs_or_error_bodies(caplog: pytest.LogCaptureFixture) -> None:
    key, wrong = generate_key(), generate_key()
    authenticator = build_authenticator(platform({"search": key}))
    caplog.set_level(logging.DEBUG)
    authenticator.authenticate(inbound({"authorization": f"Bearer {key}"}))
    error = rejected(authenticator, {"x-api-key": wrong})
    assert "authentication failed" in caplog.text
    assert key not in caplog.text and wrong not in caplog.text
    assert wrong not in error.body_bytes().decode()


def test_config_holds_only_hashes() -> None:
    key = generate_key()
    config = platform({"search": key})
    assert key not in config.model_dump_json()
    assert key.startswith("tw-") and len(key) > 40


@pytest.mark.parametrize(
    "pairs",
    [
        [("Authorization", "Bearer {ads}"), ("Authorization", "Bearer {search}")],
        [("Authorization", "Bearer {search}"), ("X-Api-Key", "{ads}")],
        [("x-api-key", "{search}"), ("X-API-KEY", "{search}")],
    ],
)
def test_repeated_or_mixed_credentials_are_refused(pairs: list[tuple[str, str]]) -> None:
    keys = {"search": generate_key(), "ads": generate_key()}
    authenticator = build_authenticator(platform(keys))
    headers = merged_headers((name, value.format(**keys)) for name, value in pairs)
    assert "exactly one credential" in rejected(authenticator, headers).message
