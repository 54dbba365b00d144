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


def test_a_team_name_the_platform_file_rejects_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--team", "Bad Team"])
    assert result.exit_code == 2
    assert "Invalid value for '--team'" in result.output
    assert result.stdout == ""


def test_a_numeric_team_name_and_label_stay_strings_in_the_entry() -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--team", "123", "--label", "1.5"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    config = parse_platform(result.stderr[result.stderr.index("teams:") :])
    principal = build_authenticator(config).authenticate(inbound({"x-api-key": key}))
    assert (principal.team, principal.key_id) == ("123", "1.5")
