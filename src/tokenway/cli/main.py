"""The `tokenway` command: each subcommand lives in its own module and is registered here."""

from __future__ import annotations

import typer

from tokenway.cli import bench, epp, keys, render, serve, sim, up, validate

app = typer.Typer(
    name="tokenway",
    help="An LLM-aware inference gateway and platform toolkit for Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """An LLM-aware inference gateway and platform toolkit for Kubernetes."""


bench.register(app)
epp.register(app)
keys.register(app)
render.register(app)
serve.register(app)
sim.register(app)
up.register(app)
validate.register(app)


def main() -> None:
    app()
