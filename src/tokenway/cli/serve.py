"""`tokenway serve -c FILE`: the gateway in front of the model servers a platform file names."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from tokenway.config.errors import ConfigError
from tokenway.config.loader import load_platform
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import ListenError, run, serve_until_signal


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")


def load_or_exit(path: Path) -> PlatformConfig:
    try:
        return load_platform(path)
    except ConfigError as exc:
        console = Console(stderr=True)
        for issue in exc.issues:
            console.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def fail(message: str) -> NoReturn:
    """Exit 1 with `error MESSAGE` on stderr; the message may quote text with brackets."""
    Console(stderr=True).print(
        f"[red]error[/red] {escape(message)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


def run_or_exit(main: Coroutine[Any, Any, None], *errors: type[Exception]) -> None:
    """Run `main`; a listen address that cannot be bound, or any of `errors`, exits 1 with its
    message instead of a traceback."""
    try:
        run(main)
    except (ListenError, *errors) as exc:
        fail(str(exc))


def serve(
    config: Path = typer.Option(..., "--config", "-c", help="Platform file (YAML)."),
    host: str | None = typer.Option(None, help="Listen address (default: gateway.listen)."),
    port: int | None = typer.Option(None, "--port", "-p", min=0, max=65535, help="Listen port."),
    log_level: str = typer.Option("info", help="Log level; access log lines are INFO."),
) -> None:
    """Serve the OpenAI API in front of the pools in CONFIG; reloads it on change or SIGHUP."""
    configure_logging(log_level)
    platform = load_or_exit(config)
    bind_host = host or platform.gateway.host
    bind_port = platform.gateway.port if port is None else port

    def ready(bound: int) -> None:
        Console(stderr=True).print(
            f"tokenway gateway on http://{bind_host}:{bound}", highlight=False
        )

    async def main() -> None:
        await serve_until_signal(Gateway(platform), bind_host, bind_port, config, ready)

    run_or_exit(main())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
