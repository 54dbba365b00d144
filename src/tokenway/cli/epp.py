"""`tokenway epp -c FILE` (the Endpoint Picker behind Envoy) and `tokenway envoy-config -c FILE`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from rich.console import Console

from tokenway.cli.serve import configure_logging, load_or_exit
from tokenway.config.platform import PlatformConfig
from tokenway.gateway.extproc.bootstrap import BootstrapError, envoy_bootstrap
from tokenway.gateway.extproc.server import EppServer
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import run


def epp(
    config: Path = typer.Option(..., "--config", "-c", help="Platform file (YAML)."),
    log_level: str = typer.Option("info", help="Log level; access log lines are INFO."),
) -> None:
    """Serve the Endpoint Picker (Envoy ext_proc) for the pools in CONFIG.

    Ports come from the `picker:` section (ext_proc 9002, health 9003, metrics 9090 by default);
    CONFIG is reloaded on change."""
    from tokenway.gateway.extproc.run import serve_picker_until_signal

    configure_logging(log_level)
    platform: PlatformConfig = load_or_exit(config)  # type: ignore[assignment]
    gateway = Gateway(platform)

    def ready(picker: EppServer, metrics_port: int) -> None:
        settings = platform.picker
        Console(stderr=True).print(
            f"tokenway picker: ext_proc {settings.listen.rpartition(':')[0]}:{picker.port}, "
            f"health :{picker.health_port}, metrics :{metrics_port}/metrics "
            f"(failure mode {settings.failure_mode})",
            highlight=False,
        )

    run(serve_picker_until_signal(gateway, config, ready))


def envoy_config(
    config: Path = typer.Option(..., "--config", "-c", help="Platform file (YAML)."),
    output: str = typer.Option("yaml", "--output", "-o", help="yaml or json."),
) -> None:
    """Print an Envoy bootstrap that sends CONFIG's traffic through the picker."""
    if output not in ("yaml", "json"):
        raise typer.BadParameter("use yaml or json", param_hint="--output")
    platform: PlatformConfig = load_or_exit(config)  # type: ignore[assignment]
    try:
        bootstrap = envoy_bootstrap(platform)
    except BootstrapError as exc:
        Console(stderr=True).print(f"[red]error[/red] {config}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(bootstrap, indent=2))
    else:
        typer.echo(yaml.safe_dump(bootstrap, sort_keys=False), nl=False)


def register(app: typer.Typer) -> None:
    app.command("epp")(epp)
    app.command("envoy-config")(envoy_config)
