"""`tokenway up`: the embedded default (gateway + simulated fleet), or a platform file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from tokenway.cli.serve import configure_logging, load_or_exit, run_or_exit
from tokenway.gateway.embedded import BASE_PUBLIC_NAME, embedded_platform
from tokenway.gateway.extproc.dataplane import start_envoy_dataplane
from tokenway.gateway.extproc.envoy import EnvoyError
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import serve_until_signal, until_signal_or_failure
from tokenway.heap import freeze_startup
from tokenway.sim.fleet import DEFAULT_LORAS, start_fleet
from tokenway.sim.profiles import DEFAULT_MODEL, PROFILES


def _welcome(url: str, fleet_urls: list[str]) -> str:
    lines = [f"[bold]tokenway gateway[/bold] on {url}"]
    if fleet_urls:
        lines.append(f"simulated vLLM fleet: {', '.join(fleet_urls)}")
    lines += [
        "",
        "[bold]curl[/bold]",
        f"  curl -s {url}/v1/chat/completions -H 'content-type: application/json' \\",
        f'    -d \'{{"model": "{BASE_PUBLIC_NAME}", '
        '"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}\'',
        "",
        "[bold]OpenAI SDK[/bold]",
        "  from openai import OpenAI",
        f'  client = OpenAI(base_url="{url}/v1", api_key="unused")',
        f'  stream = client.chat.completions.create(model="{BASE_PUBLIC_NAME}", stream=True,',
        '      messages=[{"role": "user", "content": "Hello!"}], max_tokens=32)',
        "  for chunk in stream: print(chunk.choices[0].delta.content or '', end='')",
        "",
        f"[bold]bench[/bold]  tokenway bench --target {url} --model {BASE_PUBLIC_NAME}",
        f"[bold]metrics[/bold]  {url}/metrics    models: {url}/v1/models",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


async def _serve_envoy(gateway: Gateway, host: str, port: int, fleet_urls: list[str]) -> None:
    """Envoy carries the bytes; tokenway answers as its endpoint picker (ext_proc)."""
    await gateway.start()
    try:
        dataplane = await start_envoy_dataplane(gateway.config, gateway, port, host=host)
        freeze_startup()
        try:
            Console().print(_welcome(dataplane.url, fleet_urls), highlight=False, soft_wrap=True)
            await until_signal_or_failure(gateway)
        finally:
            await dataplane.stop()
    finally:
        await gateway.stop()


async def _up(
    config_path: Path | None,
    port: int | None,
    replicas: int,
    profile: str,
    host: str,
    dataplane: str,
) -> None:
    fleet = None
    if config_path is None:
        fleet = await start_fleet(replicas, host="127.0.0.1", profile=profile)
        platform = embedded_platform(fleet.urls, DEFAULT_MODEL, DEFAULT_LORAS, port or 8080)
    else:
        platform = load_or_exit(config_path)
    gateway = Gateway(platform)
    bind_port = platform.gateway.port if port is None else port

    def ready(bound: int) -> None:
        url = f"http://{host}:{bound}"
        Console().print(_welcome(url, fleet.urls if fleet else []), highlight=False, soft_wrap=True)

    try:
        if dataplane == "envoy":
            await _serve_envoy(gateway, host, bind_port, fleet.urls if fleet else [])
        else:
            await serve_until_signal(gateway, host, bind_port, config_path, ready)
    finally:
        if fleet is not None:
            await asyncio.shield(fleet.stop())


def up(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Platform file; without it, start a simulated fleet."
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        "-p",
        min=0,
        max=65535,
        help="Gateway port (default 8080 or the file's; 0 picks a free one).",
    ),
    replicas: int = typer.Option(4, min=1, help="Simulated replicas (embedded default only)."),
    profile: str = typer.Option(
        "h100-8b", help=f"Simulator hardware profile: {', '.join(PROFILES)}."
    ),
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    log_level: str = typer.Option("warning", help="Log level; access log lines are INFO."),
    dataplane: str = typer.Option(
        "standalone",
        help="standalone (tokenway proxies, hot reload) or envoy (Envoy proxies, tokenway picks).",
    ),
) -> None:
    """Start the gateway; with no platform file, in front of a simulated vLLM fleet."""
    if profile not in PROFILES:
        raise typer.BadParameter(f"unknown profile {profile!r}", param_hint="--profile")
    if dataplane not in ("standalone", "envoy"):
        raise typer.BadParameter("use standalone or envoy", param_hint="--dataplane")
    configure_logging(log_level)
    run_or_exit(_up(config, port, replicas, profile, host, dataplane), EnvoyError)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
