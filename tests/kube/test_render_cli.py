"""`tokenway render`: unusable --out and --crds paths are one-line errors naming the path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from tokenway.cli.main import app

PLATFORM = """\
pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]
models: [{name: m, pool: p}]
deployments: [{name: d, pool: p, model: m}]
"""


def render(tmp_path: Path, *args: str) -> Result:
    platform = tmp_path / "platform.yaml"
    platform.write_text(PLATFORM)
    return CliRunner().invoke(app, ["render", "-f", str(platform), *args])


def test_out_that_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "deploy.yaml"
    out.write_text("kept\n")
    result = render(tmp_path, "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error {out}: exists and is not a directory"
    assert out.read_text() == "kept\n"


def test_crds_directory_that_does_not_exist(tmp_path: Path) -> None:
    crds = tmp_path / "missing"
    result = render(tmp_path, "--check", "--crds", str(crds))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error {crds}: no such directory"


def test_crds_file_that_is_not_yaml(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "good.yaml").write_text("kind: ConfigMap\n")
    bad = crds / "bad.yaml"
    bad.write_text("kind: CustomResourceDefinition\nspec: [\n")
    result = render(tmp_path, "--check", "--crds", str(crds))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error {bad}:3: invalid YAML:")
    assert "\n" not in result.stderr.strip()


def test_crds_file_that_is_not_a_crd(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    bad = crds / "crd.yaml"
    bad.write_text("kind: CustomResourceDefinition\nspec: {group: example.com}\n")
    result = render(tmp_path, "--check", "--crds", str(crds))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error {bad}: not a valid CustomResourceDefinition")
