"""`tokenway keys create --team T`: a new API key, printed once, and the hash to configure."""

from __future__ import annotations

import re

import typer
from pydantic import ValidationError
from rich.console import Console

from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.config.teams import TeamSpec

keys_app = typer.Typer(help="Create API keys for teams.", no_args_is_help=True)

_LABEL = re.compile(r"^[-_.A-Za-z0-9]{0,64}$")


def _check_team(name: str) -> str:
    """The platform file's own rule, so the printed entry is one it accepts."""
    try:
        TeamSpec(name=name)
    except ValidationError:
        raise typer.BadParameter(
            f"{name!r}: use letters, digits, - _ . starting and ending with a letter or digit "
            "(max 63)"
        ) from None
    return name


def _check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise typer.BadParameter("use letters, digits, - _ . (max 64)")
    return label


@keys_app.command("create")
def create(
    team: str = typer.Option(
        ..., "--team", callback=_check_team, help="The team the key belongs to."
    ),
    label: str = typer.Option(
        "", "--label", callback=_check_label, help="A non-secret name for the key, shown in logs."
    ),
) -> None:
    """Print a new key once (stdout) and the platform-file entry that stores only its hash."""
    key = generate_key()
    # Quoted: a name like 123 or 1.5 would otherwise be read back as a number, not a string.
    entry = f'{{sha256: "{hash_key(key)}"' + (f', label: "{label}"' if label else "") + "}"
    typer.echo(key)
    err = Console(stderr=True)
    err.print(
        "Store this key now; it cannot be shown again. Add to the platform file:\n"
        f'teams:\n  - name: "{team}"\n    identities:\n      apiKeys:\n        - {entry}',
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
