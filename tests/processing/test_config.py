from __future__ import annotations

import pytest

from tokenway.config.errors import ConfigError
from tokenway.config.loader import parse_platform


def test_platform_example_processors_parse() -> None:
    config = parse_platform(
        """
processors:
  - name: redact-pii
    type: pii
    phase: request
    action: redact
    failure: closed
  - name: pick-model
    type: semantic-router
    phase: pre-routing
    match: {model: auto}
    routes:
      - {model: support-assistant, examples: ["my invoice is wrong", "reset my password"]}
      - {model: llama-3.1-8b-instruct, default: true}
"""
    )
    pii, router = config.processors
    assert pii.type == "pii" and pii.timeout == 0.05 and pii.failure == "closed"
    assert router.match.model == ["auto"]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("{name: a, type: nope}", "does not match any of the expected tags"),
        ("{name: a, type: pii, phase: sometime}", "phase"),
        ("{name: a, type: injection, phase: response}", "runs in phase pre-routing or request"),
        ("{name: Bad_Name, type: pii}", "name"),
        ("{name: a, type: pii, timeout: soon}", "not a duration"),
        ("{name: a, type: pii, placeholder: '{email}'}", "only contain the field {kind}"),
        ("{name: a, type: pii, kinds: [passport]}", "kinds"),
        ("{name: a, type: injection, rules: [{name: r, pattern: '(', score: 0.5}]}", "valid regex"),
        ("{name: a, type: semantic-router, routes: [{model: x, examples: [hi]}]}", "default"),
        ("{name: a, type: cel, rules: [{name: r, when: 'true'}]}", "needs model, setHeaders"),
        ("{name: a, type: cel, rules: [{name: r, when: 'true', reject: {status: 500}}]}", "status"),
        ("{name: a, type: limits, maxTokens: {teams: {x: 0}}}", "at least 1"),
    ],
)
def test_bad_processors_are_reported_with_file_and_line(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_platform(f"processors:\n  - {{name: ok, type: pii}}\n  - {snippet}\n", "p.yaml")
    text = str(info.value)
    assert text.startswith("p.yaml:3: processors[1]")
    assert message in text


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate processor name 'a'"):
        parse_platform("processors:\n  - {name: a, type: pii}\n  - {name: a, type: limits}\n")
