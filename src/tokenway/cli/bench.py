"""`tokenway bench` and `tokenway bench compare`: load tests in the inference-perf report format."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenway.bench.config import BenchConfig, load_bench_config
from tokenway.bench.datasets import DatasetError
from tokenway.bench.headline import format_value, ratio_table
from tokenway.bench.load import ConcurrencyStage, RateStage, Stage
from tokenway.bench.record import WARMUP_STAGE, RequestRecord
from tokenway.bench.report.files import OutputError
from tokenway.bench.report.lifecycle import target_reports
from tokenway.bench.session import BenchResult, run_benchmark
from tokenway.config.errors import ConfigError, ConfigIssue

_EPILOG = (
    "Examples:\n\n"
    "  tokenway bench --target http://127.0.0.1:8000 --model llama --rate 5 --duration 30s\n\n"
    "  tokenway bench -t URL -m llama --rate 2 --rate 4 --rate 8 --duration 20s\n\n"
    "  tokenway bench -t URL -m llama --sweep --rate 1 --duration 15s  (sweep to saturation)\n\n"
    "  tokenway bench -t URL -m llama --data shared-prefix --groups 150 "
    "--system-prompt-tokens 6000\n\n"
    "  tokenway bench compare -t direct=http://127.0.0.1:8000 -t gateway=http://127.0.0.1:8080 "
    "-m llama --rate 10\n\n"
    "  tokenway bench --config bench.yaml   (every flag has a YAML key; see docs/bench.md)"
)


def _target(text: str) -> dict[str, str]:
    name, sep, url = text.partition("=")
    return {"name": name, "url": url} if sep and "://" not in name else {"url": text}


def _overrides(**flags: Any) -> dict[str, Any]:
    """Flags given on the command line as bench-config keys; absent flags leave the file alone."""
    out: dict[str, Any] = {}
    simple = {
        "model": "model",
        "output": "output",
        "timeout": "timeout",
        "seed": "seed",
        "tenant_header": "tenantHeader",
        "stream": "stream",
    }
    for flag, key in simple.items():
        if flags[flag] is not None:
            out[key] = flags[flag]
    if flags["target"] is not None:
        out["targets"] = [_target(t) for t in flags["target"]]
    load: dict[str, Any] = {}
    if flags["sweep"]:
        load["sweep"] = _sweep(flags)
    elif flags["max_stages"] is not None:
        raise _flag_error("--max-stages", "counts sweep stages: add --sweep")
    elif any(flags[f] is not None for f in ("rate", "concurrency", "duration", "requests")):
        load["stages"] = _stages(flags)
    for flag, key in (("arrivals", "arrivals"), ("warmup", "warmup")):
        if flags[flag] is not None:
            load[key] = flags[flag]
    if load:
        out["load"] = load
    data: dict[str, Any] = {}
    for flag, key in (
        ("data", "type"),
        ("api", "api"),
        ("groups", "groups"),
        ("prompts_per_group", "promptsPerGroup"),
        ("system_prompt_tokens", "systemPromptTokens"),
        ("turns", "turns"),
        ("file", "file"),
    ):
        if flags[flag] is not None:
            data[key] = flags[flag]
    for flag, key in (("input_tokens", "inputTokens"), ("output_tokens", "outputTokens")):
        if flags[flag] is not None:
            data[key] = {"mean": flags[flag]}
    if flags["lora_adapters"] is not None:
        data["lora"] = {"count": flags["lora_adapters"]}
    if data:
        out["data"] = data
    slo = {k: flags[f"slo_{k}"] for k in ("ttft", "tpot") if flags[f"slo_{k}"] is not None}
    if slo:
        out["slo"] = slo
    return out


def _flag_error(flag: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue("command line", None, flag, message)])


def _sweep(flags: dict[str, Any]) -> dict[str, Any]:
    """load.sweep keys from the flags given; the rest come from the file or the defaults."""
    for flag in ("requests", "concurrency"):
        if flags[flag] is not None:
            raise _flag_error(f"--{flag}", "sweep stages are rate stages lasting --duration")
    sweep: dict[str, Any] = {}
    if flags["rate"] is not None:
        if len(flags["rate"]) > 1:
            raise _flag_error("--rate", "a sweep takes one --rate, its start")
        sweep["start"] = flags["rate"][0]
    if flags["duration"] is not None:
        sweep["stageDuration"] = flags["duration"]
    if flags["max_stages"] is not None:
        sweep["maxStages"] = flags["max_stages"]
    return sweep


def _stages(flags: dict[str, Any]) -> list[dict[str, Any]]:
    """One stage per --rate and per --concurrency (1 req/s when neither), each bounded by
    --requests or --duration (60 s when neither; both is reported as a stage error)."""
    bound = {
        key: flags[flag]
        for flag, key in (("requests", "count"), ("duration", "duration"))
        if flags[flag] is not None
    } or {"duration": "60s"}
    concurrency = flags["concurrency"] or []
    rates = flags["rate"] or ([] if concurrency else [1.0])
    return [{"rate": r, **bound} for r in rates] + [
        {"concurrency": c, **bound} for c in concurrency
    ]


def _expected(stage: Stage) -> int | None:
    if stage.count is not None:
        return stage.count
    if isinstance(stage, RateStage) and stage.duration is not None:
        return round(stage.rate * stage.duration)
    return None


def _describe(stage: Stage) -> str:
    if isinstance(stage, ConcurrencyStage):
        return f"concurrency {stage.concurrency}"
    return f"{stage.rate:g} req/s {stage.process}"


async def _run(config: BenchConfig, progress: Progress) -> BenchResult:
    current: dict[str, Any] = {}

    def on_stage(target: str, index: int, stage: Stage) -> None:
        name = "warm-up" if index == WARMUP_STAGE else f"stage {index}"
        current["task"] = progress.add_task(
            f"{target} {name}: {_describe(stage)}", total=_expected(stage)
        )

    def on_record(record: RequestRecord) -> None:
        progress.advance(current["task"])

    return await run_benchmark(config, on_record, on_stage)


def _print_summary(console: Console, result: BenchResult, config: BenchConfig) -> None:
    reports = {
        run.name: report.summary
        for run in result.runs
        if (report := target_reports(run, config.goodput_slo())).summary is not None
    }
    table = Table(title="summary")
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    if len(reports) > 1:
        table.add_column("ratio vs " + next(iter(reports)), justify="right")
    for row in ratio_table(reports):
        cells = [format_value(v, row.metric.unit) for v in row.values]
        if len(reports) > 1:
            cells.append(" ".join("-" if r is None else f"{r:.2f}x" for r in row.ratios[1:]))
        table.add_row(row.metric.label, *cells)
    console.print(table)
    for run in result.runs:
        if run.saturated:
            console.print(f"{run.name}: sweep stopped: {run.saturated}")
    console.print(f"report: {config.output / 'report.html'} ({len(result.files)} files)")


def bench(
    ctx: typer.Context,
    target: list[str] = typer.Option(
        None, "--target", "-t", help="Server base URL, or NAME=URL; repeat to compare targets."
    ),
    model: str = typer.Option(None, "--model", "-m", help="Model (or adapter) to request."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Folder for the reports (default bench-results)."
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="A bench YAML file; flags override it."
    ),
    rate: list[float] = typer.Option(
        None, "--rate", "-r", help="Requests per second; repeat for several stages (default 1)."
    ),
    concurrency: list[int] = typer.Option(
        None, "--concurrency", help="Requests kept in flight; repeat for several stages."
    ),
    duration: str = typer.Option(
        None, "--duration", "-d", help="Length of each stage (default 60s; 15s with --sweep)."
    ),
    requests: int = typer.Option(
        None, "--requests", "-n", help="Requests per stage (instead of a duration)."
    ),
    arrivals: str = typer.Option(None, help="poisson or constant arrivals (default poisson)."),
    sweep: bool = typer.Option(
        False, "--sweep", help="Double the rate each stage until saturation."
    ),
    max_stages: int = typer.Option(None, help="Most sweep stages, with --sweep (default 8)."),
    warmup: str = typer.Option(
        None, help="Warm-up time at the first stage's load, not measured (default 0s)."
    ),
    data: str = typer.Option(
        None, help="synthetic, shared-prefix, multi-turn, jsonl or sharegpt (default synthetic)."
    ),
    api: str = typer.Option(None, help="chat or completion requests (default chat)."),
    input_tokens: int = typer.Option(
        None, help="Prompt tokens (question tokens for shared-prefix) (default 256)."
    ),
    output_tokens: int = typer.Option(None, help="Output tokens per request (default 128)."),
    groups: int = typer.Option(None, help="shared-prefix: number of shared contexts (default 10)."),
    prompts_per_group: int = typer.Option(
        None, help="shared-prefix: prompts per context (default 10)."
    ),
    system_prompt_tokens: int = typer.Option(
        None, help="Shared system prompt tokens (default 2048)."
    ),
    turns: int = typer.Option(None, help="multi-turn: turns per conversation (default 5)."),
    file: Path = typer.Option(None, help="jsonl or sharegpt: the data file."),
    lora_adapters: int = typer.Option(
        None, help="Spread requests over N adapters, 60/30/10 tiers."
    ),
    api_key: str = typer.Option(
        None, envvar="TOKENWAY_API_KEY", help="Bearer token for the target."
    ),
    tenant_header: str = typer.Option(None, help="Header carrying each request's tenant."),
    timeout: str = typer.Option(None, help="Per-request timeout (default 300s)."),
    stream: bool = typer.Option(
        None, "--stream/--no-stream", help="Stream answers (default stream)."
    ),
    seed: int = typer.Option(None, help="Seed for data and arrivals (default 0)."),
    slo_ttft: str = typer.Option(None, help="Goodput SLO on time to first token, e.g. 500ms."),
    slo_tpot: str = typer.Option(None, help="Goodput SLO on time per output token, e.g. 50ms."),
) -> None:
    """Benchmark an OpenAI-compatible server; writes inference-perf JSON, plots and report.html."""
    comparing = ctx.info_name == "compare"
    if not comparing and ctx.invoked_subcommand is not None:
        return
    console = Console(stderr=True)
    flags = {
        k: v
        for k, v in locals().items()
        if k not in ("ctx", "config", "comparing", "console", "api_key")
    }
    if target is None and config is None:
        console.print("[red]error[/red] give --target URL (or --config FILE); see --help")
        raise typer.Exit(2)
    try:
        settings = load_bench_config(config, _overrides(**flags), api_key)
        if comparing and len(settings.targets) < 2:
            console.print("[red]error[/red] compare needs at least two --target NAME=URL")
            raise typer.Exit(2)
        result = _measure(settings, console)
    except ConfigError as exc:
        for issue in exc.issues:
            console.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (DatasetError, OutputError, ValueError) as exc:
        console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _print_summary(Console(), result, settings)


def _measure(settings: BenchConfig, console: Console) -> BenchResult:
    """Runs the benchmark with progress bars; Ctrl-C exits 130 once the finished stages are
    written (run_benchmark writes them as it is cancelled)."""
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            return _run_async(_run(settings, progress))
    except KeyboardInterrupt:
        console.print(f"interrupted: stages that finished, if any, are in {settings.output}")
        raise typer.Exit(130) from None


def _run_async(coro: Coroutine[Any, Any, BenchResult]) -> BenchResult:
    """Runs on uvloop where available: the client's scheduling lag is the event loop's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(
        help="Load-test OpenAI-compatible servers (inference-perf format, plots, comparisons).",
        epilog=_EPILOG,
        no_args_is_help=False,
    )
    bench_app.callback(invoke_without_command=True, epilog=_EPILOG)(bench)
    bench_app.command(
        "compare",
        help="The same workload against several --target NAME=URL, interleaved, with ratios.",
        epilog=_EPILOG,
    )(bench)
    app.add_typer(bench_app, name="bench")
