"""`--check`: rendered objects validate strictly; broken ones are named by object and field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from tests.kube.conftest import CRDS, EXAMPLE, render_input
from typer.testing import CliRunner

from tokenway.cli.main import app
from tokenway.kube.crd_schema import CrdSchemas
from tokenway.kube.objects import Manifest
from tokenway.kube.render import object_ref, render
from tokenway.kube.validate import Checker


@pytest.fixture(scope="module")
def checker(crds: CrdSchemas) -> Checker:
    return Checker(crds)


@pytest.fixture
def objects(example_text: str) -> dict[str, Manifest]:
    return {object_ref(o): copy.deepcopy(o) for o in render(render_input(example_text))}


def test_example_is_valid(checker: Checker, objects: dict[str, Manifest]) -> None:
    report = checker.check(list(objects.values()))
    assert report.problems == []
    assert report.checked == len(objects)


def _problems(checker: Checker, obj: Manifest) -> list[str]:
    return [str(p) for p in checker.check([obj]).problems]


def test_builtin_kind_unknown_field_and_wrong_type(
    checker: Checker, objects: dict[str, Manifest]
) -> None:
    deployment = objects["Deployment models/llama-8b"]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    deployment["spec"]["replica"] = 2
    assert _problems(checker, deployment) == [
        "Deployment models/llama-8b: spec: Additional properties are not allowed "
        "('replica' was unexpected)",
        "Deployment models/llama-8b: spec.template.spec.containers[0].ports[0].containerPort: "
        "'http' is not of type 'integer'",
    ]


def test_builtin_kind_bad_name(checker: Checker, objects: dict[str, Manifest]) -> None:
    service = objects["Service models/llama-8b"]
    service["metadata"]["name"] = "Llama_8B"
    assert any("metadata.name: 'Llama_8B' does not match" in p for p in _problems(checker, service))


def test_dra_claim_template_is_checked_against_resource_v1(
    checker: Checker, objects: dict[str, Manifest]
) -> None:
    template = objects["ResourceClaimTemplate models/llama-8b-gpus"]
    request = template["spec"]["spec"]["devices"]["requests"][0]
    request["firstAvailable"][0]["deviceClass"] = request["firstAvailable"][0].pop(
        "deviceClassName"
    )
    problems = _problems(checker, template)
    assert any("firstAvailable[0]" in p and "'deviceClass' was unexpected" in p for p in problems)


def test_custom_resource_schema_and_cel_rules(
    checker: Checker, objects: dict[str, Manifest]
) -> None:
    pool = objects["InferencePool models/llama-8b"]
    pool["spec"]["targetPorts"] = [{"number": 8000}, {"number": 8000}]
    pool["spec"]["endpointPickerRef"]["failureMode"] = "Sometimes"
    problems = _problems(checker, pool)
    assert "InferencePool models/llama-8b: spec.targetPorts: port number must be unique" in problems
    assert any("endpointPickerRef.failureMode: 'Sometimes' is not one of" in p for p in problems)
    route = objects["HTTPRoute models/llama-8b"]
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "v1"
    assert any("must be an absolute path" in p for p in _problems(checker, route))


def test_custom_resource_unknown_field_and_int_or_string(
    checker: Checker, objects: dict[str, Manifest]
) -> None:
    queue = objects["ClusterQueue search-cq"]
    queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][1]["nominalQuota"] = [512]
    queue["spec"]["cohort"] = "research"
    problems = _problems(checker, queue)
    assert (
        "ClusterQueue search-cq: spec: "
        "Additional properties are not allowed ('cohort' was unexpected)" in problems
    )
    assert any("resources[1].nominalQuota" in p for p in problems)


def test_scope_and_missing_schema(checker: Checker, objects: dict[str, Manifest]) -> None:
    local = objects["LocalQueue search/search"]
    del local["metadata"]["namespace"]
    assert _problems(checker, local) == [
        "LocalQueue search: metadata.namespace: LocalQueue is namespaced; give a namespace"
    ]
    no_crds = Checker(None).check([objects["ScaledObject models/llama-8b"]])
    assert [str(p) for p in no_crds.problems] == [
        "ScaledObject models/llama-8b: apiVersion: no schema for keda.sh/v1alpha1 ScaledObject "
        "(pass --crds DIR)"
    ]


def test_cli_render_check(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "deploy"
    result = runner.invoke(
        app, ["render", "-f", str(EXAMPLE), "-o", str(out), "--check", "--crds", str(CRDS)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "kustomization.yaml").is_file()
    assert "objects valid" in result.output


def test_cli_reports_invalid_platform_file(tmp_path: Path) -> None:
    bad = tmp_path / "platform.yaml"
    bad.write_text("pools: []\ndeployments:\n  - {name: a, pool: gone, model: m}\n")
    result = CliRunner().invoke(app, ["render", "-f", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{bad}:2: deployments" in result.output and "unknown pool 'gone'" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "gpus",
    [
        "{driver: gpu.example.com, count: 2, topology: pcieRoot}",
        "{migProfile: 1g.10gb}",
        "{count: 4, minMemory: 40Gi, topology: pcieRoot}",
    ],
)
def test_other_gpu_shapes_are_valid(checker: Checker, gpus: str) -> None:
    text = (
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        f"deployments:\n  - name: d\n    pool: p\n    model: m\n    gpus: {gpus}\n"
    )
    assert checker.check(render(render_input(text))).problems == []


def test_cli_reports_name_collisions(tmp_path: Path) -> None:
    platform = tmp_path / "platform.yaml"
    platform.write_text(
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        "models: [{name: chat.v1, pool: p}, {name: chat-v1, pool: p}]\n"
        "deployments: [{name: d, pool: p, model: m}]\n"
    )
    result = CliRunner().invoke(app, ["render", "-f", str(platform), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "default.inferenceobjective.chat-v1.yaml" in result.output
