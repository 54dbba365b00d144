"""`tokenway keys create --team T`: a new API key, printed once, and the hash to configure."""

from __future__ import annotations

import re

import typer
from rich.console import Console

from tokenway.auth.apikeys import generate_key, hash_key

keys_app = typer.Typer(help="Create API keys for teams.", no_args_is_help=True)

_LABEL = re.compile(r"^[-_.A-Za-z0-9]{0,64}$")


@keys_app.command("create")
def create(
    team: str = typer.Option(..., "--team", help="The team the key belongs to."),
    label: str = typer.Option("", "--label", help="A non-secret name for the key, shown in logs."),
) -> None:
    """Print a new key once (stdout) and the platform-file entry that stores only its hash."""
    if not _LABEL.match(label):
        Console(stderr=True).print("[red]error[/red] --label: use letters, digits, - _ . (max 64)")
        raise typer.Exit(2)
    key = generate_key()
    entry = f'{{sha256: "{hash_key(key)}"' + (f", label: {label}" if label else "") + "}"
    typer.echo(key)
    err = Console(stderr=True)
    err.print(
        "Store this key now; it cannot be shown again. Add to the platform file:\n"
        f"teams:\n  - name: {team}\n    identities:\n      apiKeys:\n        - {entry}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
