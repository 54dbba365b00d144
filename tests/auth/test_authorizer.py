from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.auth.conftest import context

from tokenway.auth.authorizer import Authorizer, OpenAuthorizer
from tokenway.auth.factory import build_authorizer
from tokenway.auth.principal import ANONYMOUS, Principal
from tokenway.auth.rego_policy import PolicyError, policy_input
from tokenway.config.loader import parse_platform
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.context import Route
from tokenway.gateway.errors import GatewayError

SEARCH = Principal(team="search", method="api-key", key_id="ci")
CHAT = Route("llama-3.1-8b-instruct", "llama", "meta-llama/Llama-3.1-8B-Instruct", None, 0)
SUPPORT = Route("support-assistant", "llama", "support-lora-v3", "support-lora-v3", 1)
SECRET = Route("secret-ft", "llama", "secret-lora", "secret-lora", 0)


def authorizer(team: dict[str, Any] | None = None, **access: Any) -> Authorizer:
    spec = {"name": "search", "models": ["llama-3.1-8b-instruct", "support-*"]} | (team or {})
    built = build_authorizer(parse_platform(yaml.safe_dump({"teams": [spec], "access": access})))
    assert isinstance(built, Authorizer)
    return built


def denied(
    auth: Authorizer, principal: Principal, model: str, route: Route | None, **kw: Any
) -> str:
    with pytest.raises(GatewayError) as caught:
        auth.authorize(context(principal, model, route=route, **kw))
    assert caught.value.status == 403
    assert caught.value.body()["error"]["type"] == "permission_denied"  # type: ignore[index]
    return caught.value.message


def test_open_without_teams() -> None:
    auth = build_authorizer(PlatformConfig())
    assert isinstance(auth, OpenAuthorizer)
    auth.authorize(context(ANONYMOUS, "anything"))


def test_allow_lists_use_the_resolved_route_with_globs() -> None:
    auth = authorizer()
    ctx = context(SEARCH, "llama-3.1-8b-instruct", route=CHAT)
    auth.authorize(ctx)
    assert "may use" in ctx.annotations["authz"]
    auth.authorize(context(SEARCH, "support-assistant", route=SUPPORT))
    assert "not allowed" in denied(auth, SEARCH, "secret-ft", SECRET)


def test_unknown_team_follows_the_default() -> None:
    stranger = Principal(team="ads")
    assert "has no access" in denied(authorizer(), stranger, "llama-3.1-8b-instruct", CHAT)
    authorizer(default="allow").authorize(context(stranger, "llama-3.1-8b-instruct", route=CHAT))


@pytest.mark.parametrize(
    "spelling",
    [
        "Llama-3.1-8B-Instruct",  # case
        "\uff4c\uff4c\uff41\uff4d\uff41-3.1-8b-instruct",  # full-width forms fold under NFKC
        " llama-3.1-8b-instruct ",
    ],
)
def test_spellings_that_fold_to_an_allowed_name_authorize_the_same_route(spelling: str) -> None:
    route = Route(spelling, "llama", "meta-llama/Llama-3.1-8B-Instruct", None, 0)
    authorizer().authorize(context(SEARCH, spelling, route=route))


@pytest.mark.parametrize(
    "route",
    [
        # Cyrillic a (U+0430) looks like Latin a but is another name.
        Route("ll\u0430ma-3.1-8b-instruct", "llama", "meta-llama/Llama-3.1-8B-Instruct", None, 0),
        # the adapter's own name used as the model (adapter vs base)
        Route("secret-lora", "llama", "secret-lora", "secret-lora", 0),
        # an alias that resolves to an allowed upstream model is still another public name
        Route("gpt-4o", "llama", "meta-llama/Llama-3.1-8B-Instruct", None, 0),
    ],
)
def test_look_alikes_adapters_and_aliases_are_denied(route: Route) -> None:
    assert "not allowed" in denied(authorizer(), SEARCH, route.public_model, route)


def test_raw_model_string_cannot_override_the_route() -> None:
    # The client wrote an allowed name, but a processor routed it somewhere else.
    assert "secret-ft" in denied(authorizer(), SEARCH, "llama-3.1-8b-instruct", SECRET)


def test_adapter_and_operation_allow_lists() -> None:
    auth = authorizer({"models": ["*"], "adapters": ["support-*"], "operations": ["chat"]})
    auth.authorize(context(SEARCH, "support-assistant", route=SUPPORT))
    assert "adapter 'secret-lora'" in denied(auth, SEARCH, "secret-ft", SECRET)
    assert "operation 'embedding'" in denied(auth, SEARCH, "x", CHAT, operation="embedding")
    assert "operation 'CHAT" not in denied(auth, SEARCH, "x", CHAT, operation="Embedding")


POLICY = """
package tokenway.authz

default allow := false

allow if {
    input.principal.team == "search"
    input.estimated_tokens.max_tokens <= 1000
    not input.headers["x-debug"]
}

reason := "max_tokens over 1000 for this team" if {
    input.estimated_tokens.max_tokens > 1000
}
"""


def test_rego_policy_runs_after_allow_lists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = tmp_path / "models.rego"
    policy.write_text(POLICY)
    auth = authorizer(rego=str(policy))
    caplog.set_level(logging.INFO, logger="tokenway.auth")
    auth.authorize(context(SEARCH, "support-assistant", route=SUPPORT, max_tokens=500))
    message = denied(auth, SEARCH, "support-assistant", SUPPORT, max_tokens=5000)
    assert "max_tokens over 1000" in message
    assert "policy denies" in denied(
        auth, SEARCH, "support-assistant", SUPPORT, headers={"x-debug": "1"}
    )
    assert "reason=max_tokens over 1000" in caplog.text
    assert "not allowed" in denied(auth, SEARCH, "secret-ft", SECRET)


@pytest.mark.parametrize(
    "source",
    [
        "package tokenway.authz\nallow if { input.principal.team == 'x' }\n",
        "package tokenway.authz\nallow := true\nallow := false\n",
        'package tokenway.authz\nallow := "yes"\n',
        "package tokenway.authz\nallow if { x := 1 / 0; x > 0 }\n",
    ],
)
def test_policy_errors_deny(tmp_path: Path, source: str) -> None:
    policy = tmp_path / "p.rego"
    policy.write_text(source)
    try:
        auth = authorizer(rego=str(policy))
    except PolicyError:
        return
    message = denied(auth, SEARCH, "support-assistant", SUPPORT)
    assert "policy" in message


def test_unreadable_policy_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot load"):
        authorizer(rego=str(tmp_path / "missing.rego"))
    (tmp_path / "bad.rego").write_text("package tokenway.authz\nallow if {")
    with pytest.raises(PolicyError):
        authorizer(rego=str(tmp_path / "bad.rego"))


def test_policy_input_never_contains_credentials() -> None:
    headers = {
        "authorization": "Bearer tw-secret",
        "x-api-key": "tw-secret",
        "x-forwarded-client-cert": "URI=spiffe://a/b",
        "x-team-hint": "search",
    }
    document = policy_input(context(SEARCH, "support-assistant", route=SUPPORT, headers=headers))
    assert "tw-secret" not in str(document)
    assert document["headers"] == {"x-team-hint": "search"}
    assert document["model"] == "support-assistant" and document["adapter"] == "support-lora-v3"


def test_a_failing_builtin_denies_even_with_a_default_allow(tmp_path: Path) -> None:
    policy = tmp_path / "p.rego"
    policy.write_text(
        "package tokenway.authz\ndefault allow := true\n"
        'allow := false if { to_number(input.headers["x-cost-center"]) > 100 }\n'
    )
    auth = authorizer(rego=str(policy))
    headers = {"x-cost-center": "abc"}
    message = denied(auth, SEARCH, "support-assistant", SUPPORT, headers=headers)
    assert "policy" in message


def test_credentials_never_reach_the_policy_whatever_their_spelling() -> None:
    headers = {"Authorization": "Bearer tw-secret", "X-Api-Key": "tw-secret", "Cookie": "s=1"}
    document = policy_input(context(SEARCH, "support-assistant", route=SUPPORT, headers=headers))
    assert "tw-secret" not in str(document) and document["headers"] == {}
