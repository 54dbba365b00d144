from __future__ import annotations

from tests.auth.conftest import inbound
from typer.testing import CliRunner

from tokenway.auth.factory import build_authenticator
from tokenway.cli.main import app
from tokenway.config.loader import parse_platform


def test_keys_create_prints_a_key_once_and_a_config_entry_that_accepts_it() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--team", "search", "--label", "ci"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("tw-") and "\n" not in key
    snippet = result.stderr[result.stderr.index("teams:") :]
    assert key not in result.stderr
    config = parse_platform(snippet)
    principal = build_authenticator(config).authenticate(inbound({"x-api-key": key}))
    assert (principal.team, principal.key_id) == ("search", "ci")
    second = CliRunner().invoke(app, ["keys", "create", "--team", "search"])
    assert second.stdout.strip() != key


def test_bad_label_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--team", "search", "--label", "a b"])
    assert result.exit_code == 2
    assert "--label" in result.stderr
