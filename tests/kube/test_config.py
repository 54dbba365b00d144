"""Invalid deployments, queues and SLOs give errors that name the line and the field."""

from __future__ import annotations

import pytest

from tokenway.config.errors import ConfigError
from tokenway.config.loader import parse_platform

BASE = """\
pools:
  - name: llama
    endpoints: [http://10.0.0.1:8000]
models:
  - name: chat
    pool: llama
"""


def _issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_platform(BASE + text, "p.yaml")
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "deployments:\n  - {name: a, pool: nope, model: m}\n",
            "p.yaml:7: deployments: Value error, deployments[0].pool: unknown pool 'nope'",
        ),
        (
            "deployments:\n  - {name: a, pool: llama, model: m}\n"
            "  - {name: b, pool: llama, model: m}\n",
            "deployments[1].pool: pool 'llama' already served by 'a'",
        ),
        (
            "deployments:\n  - name: a\n    pool: llama\n    model: m\n"
            "    gpus: {count: 2, migProfile: 1g.10gb}\n",
            "p.yaml:11: deployments[0].gpus: Value error, a process can use one MIG slice",
        ),
        (
            "deployments:\n  - name: a\n    pool: llama\n    model: m\n"
            "    gpus:\n      prefer: [{count: 2}]\n",
            "p.yaml:12: deployments[0].gpus.prefer[0]: Value error, a GPU option names exactly one",
        ),
        (
            "deployments:\n  - {name: a, pool: llama, model: m, replicas: {min: 0, max: 2}}\n",
            "replicas.min 0 needs autoscale.scaleToZero",
        ),
        (
            "deployments:\n  - {name: a, pool: llama, model: m, autoscale: {scaleToZero: true}}\n",
            "autoscale needs tokensPerSecondPerReplica and/or saturation",
        ),
        (
            "deployments:\n  - {name: A_b, pool: llama, model: m}\n",
            "p.yaml:8: deployments[0].name: String should match pattern",
        ),
        (
            "queues:\n  - {team: t, namespace: t, gpuQuota: {}}\n",
            "p.yaml:8: queues[0].gpuQuota: Dictionary should have at least 1 item",
        ),
        (
            "slos:\n  - {model: unknown, ttftP95: 1s}\n",
            "slos[0].model: unknown model 'unknown'",
        ),
    ],
)
def test_invalid_sections_name_line_and_field(text: str, expected: str) -> None:
    issues = _issues(text)
    assert any(expected in issue for issue in issues), issues


def test_valid_sections_parse() -> None:
    config = parse_platform(
        BASE + "deployments:\n  - name: a\n    pool: llama\n    model: m\n"
        "    gpus: {migProfile: 1g.10gb}\n",
        "p.yaml",
    )
    assert config.deployments[0].gpus.counts() == [1]
