"""`tokenway sim`: simulated vLLM replicas over HTTP (one, or a fleet in one process)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import typer
from rich.console import Console

from tokenway.heap import freeze_startup
from tokenway.sim.faults import FaultConfig
from tokenway.sim.fleet import start_fleet
from tokenway.sim.profiles import DEFAULT_MODEL, DEFAULT_PROFILE, PROFILES, get_profile

sim_app = typer.Typer(
    help="Simulated vLLM model servers (OpenAI API, vLLM metrics, batching, KV cache, LoRA).",
    no_args_is_help=False,
)


def _loras(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _check_profile(value: str) -> str:
    if value not in PROFILES:
        raise typer.BadParameter(f"unknown profile {value!r}; known: {', '.join(sorted(PROFILES))}")
    return value


async def _serve(
    replicas: int,
    host: str,
    base_port: int,
    model: str,
    loras: Sequence[str],
    max_loras: int,
    profile: str,
    faults: FaultConfig,
) -> None:
    fleet = await start_fleet(
        replicas, host, base_port, model, loras, max_loras, profile, faults=[faults] * replicas
    )
    freeze_startup()
    console = Console(stderr=True)
    for url in fleet.urls:
        console.print(f"serving {model} ({profile}) at {url}", highlight=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fleet.stop()
        console.print("stopped", highlight=False)


def _run(
    replicas: int,
    host: str,
    port: int,
    model: str,
    lora: str,
    max_loras: int,
    profile: str,
    faults: FaultConfig,
) -> None:
    if replicas < 1:
        raise typer.BadParameter("--replicas must be at least 1")
    if max_loras < 1:
        raise typer.BadParameter("--max-loras must be at least 1")
    coro = _serve(replicas, host, port, model, _loras(lora), max_loras, profile, faults)
    if not get_profile(profile).instant:
        # asyncio's own loop: its timers are finer than uvloop's, and step timing matters.
        asyncio.run(coro)
        return
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


ModelOpt = typer.Option(DEFAULT_MODEL, "--model", help="Base model name served.")
LoraOpt = typer.Option("", "--lora", help="LoRA adapters loaded at start, comma-separated.")
MaxLorasOpt = typer.Option(1, "--max-loras", help="Adapters active in one batch.")
ProfileOpt = typer.Option(
    DEFAULT_PROFILE,
    "--profile",
    callback=_check_profile,
    help=f"Hardware x model profile: {', '.join(sorted(PROFILES))}.",
)
HostOpt = typer.Option("127.0.0.1", "--host")
ErrorRateOpt = typer.Option(0.0, "--error-rate", help="Fraction of requests answered 500.")
CrashAfterOpt = typer.Option(None, "--crash-after", help="Crash after N requests.")
CrashAtOpt = typer.Option(None, "--crash-at", help="Crash T seconds after start.")
HangAfterOpt = typer.Option(None, "--hang-after", help="Stop answering after N requests.")
HangAtOpt = typer.Option(None, "--hang-at", help="Stop answering T seconds after start.")
SlowStartOpt = typer.Option(0.0, "--slow-start", help="Not ready (503) for T seconds.")
SpikeRateOpt = typer.Option(0.0, "--spike-rate", help="Fraction of requests delayed.")
SpikeOpt = typer.Option(0.0, "--spike-seconds", help="Delay of a latency spike.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the fault decisions.")


@sim_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port)."),
    host: str = HostOpt,
    model: str = ModelOpt,
    lora: str = LoraOpt,
    max_loras: int = MaxLorasOpt,
    profile: str = ProfileOpt,
    error_rate: float = ErrorRateOpt,
    crash_after: int | None = CrashAfterOpt,
    crash_at: float | None = CrashAtOpt,
    hang_after: int | None = HangAfterOpt,
    hang_at: float | None = HangAtOpt,
    slow_start: float = SlowStartOpt,
    spike_rate: float = SpikeRateOpt,
    spike_seconds: float = SpikeOpt,
    seed: int = SeedOpt,
) -> None:
    """Serve one simulated vLLM replica until SIGINT or SIGTERM."""
    ctx.obj = FaultConfig(
        error_rate,
        500,
        crash_after,
        crash_at,
        hang_after,
        hang_at,
        slow_start,
        spike_rate,
        spike_seconds,
        seed,
    )
    if ctx.invoked_subcommand is None:
        _run(1, host, port, model, lora, max_loras, profile, ctx.obj)


@sim_app.command("fleet")
def fleet(
    ctx: typer.Context,
    replicas: int = typer.Option(4, "--replicas", help="Number of replicas."),
    base_port: int = typer.Option(8000, "--base-port", help="Replica i listens on base+i."),
    host: str = HostOpt,
    model: str = ModelOpt,
    lora: str = LoraOpt,
    max_loras: int = MaxLorasOpt,
    profile: str = ProfileOpt,
) -> None:
    """Serve N replicas in one process until SIGINT or SIGTERM.

    Fault options of `tokenway sim` go before `fleet` and apply to every replica.
    """
    _run(replicas, host, base_port, model, lora, max_loras, profile, ctx.obj)


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")
