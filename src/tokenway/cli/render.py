"""`tokenway render -f platform.yaml -o DIR [--check] [--crds DIR]`: Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from tokenway.cli.serve import fail
from tokenway.config.errors import ConfigError, ConfigIssue
from tokenway.config.loader import load_platform
from tokenway.kube.crd_schema import CrdError, load_crds
from tokenway.kube.output import render_files, write_tree
from tokenway.kube.render import RenderInput, rego_path, render
from tokenway.kube.validate import Checker


def _read_input(file: Path) -> RenderInput:
    config = load_platform(file)
    raw: dict[str, Any] = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    policies = {}
    if (path := rego_path(raw)) is not None:
        policy_file = file.parent / path
        try:
            policies[path] = policy_file.read_text(encoding="utf-8")
        except OSError as exc:
            issue = ConfigIssue(
                str(file), None, "access.rego", f"cannot read {policy_file}: {exc.strerror}"
            )
            raise ConfigError([issue]) from None
    return RenderInput(config, raw, policies)


def render_command(
    file: Path = typer.Option(..., "--file", "-f", help="The platform file (YAML)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Directory to write (kustomize)."),
    check: bool = typer.Option(False, "--check", help="Validate every object strictly (1.34)."),
    crds: Path | None = typer.Option(
        None, "--crds", help="Directory of the CRD YAML files installed in the cluster."
    ),
) -> None:
    """Render Deployments, DRA claims, InferencePools, routes, autoscalers, queues and monitors."""
    err = Console(stderr=True)
    if out is None and not check:
        err.print("[red]error[/red] give --out DIR, --check, or both", highlight=False)
        raise typer.Exit(2)
    if out is not None and out.exists() and not out.is_dir():
        fail(f"{out}: exists and is not a directory")
    try:
        source = _read_input(file)
        objects = render(source)
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if check:
        with err.status(f"validating {len(objects)} objects against Kubernetes 1.34 and CRDs"):
            try:
                schemas = load_crds(crds) if crds is not None else None
            except CrdError as exc:
                fail(str(exc))
            report = Checker(schemas).check(objects)
        for problem in report.problems:
            err.print(f"[red]invalid[/red] {problem}", highlight=False, soft_wrap=True)
        if report.cel_rules_unevaluated:
            err.print(
                f"note: {report.cel_rules_unevaluated} CRD CEL rules use functions this checker "
                "lacks and were not evaluated",
                highlight=False,
            )
        if report.problems:
            raise typer.Exit(1)
        err.print(f"{report.checked} objects valid", highlight=False)
    if out is not None:
        try:
            files = render_files(objects, file.name)
        except ValueError as exc:  # two models whose names map to one object name
            err.print(f"[red]error[/red] {file}: {exc}", highlight=False)
            raise typer.Exit(1) from None
        try:
            write_tree(files, out)
        except OSError as exc:
            fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
        Console().print(f"{out}: {len(objects)} objects in {len(files)} files", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("render")(render_command)
