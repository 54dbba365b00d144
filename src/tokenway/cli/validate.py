"""`tokenway validate FILE`: check a platform file and report every problem with its line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tokenway.config.errors import ConfigError
from tokenway.config.loader import load_platform


def validate(file: Path = typer.Argument(..., help="The platform file (YAML) to check.")) -> None:
    """Validate a platform file; exit 1 and list file:line: field: problem on errors."""
    console = Console(stderr=True)
    try:
        config = load_platform(file)
    except ConfigError as exc:
        for issue in exc.issues:
            console.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    Console().print(
        f"{file}: valid ({len(config.pools)} pools, {len(config.models)} models)", highlight=False
    )


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
