"""Cross-check of `tokenway bench` against inference-perf 0.7.0 on the same simulated replica.

Both clients send the same load (completions, streaming, 512 prompt tokens, 64 output tokens
with ignore_eos, constant 4 requests/s for 20 s) to one `tokenway sim` replica (h100-8b
profile), in interleaved rounds with alternating order. The simulator's own TTFT and ITL
histograms are read before and after each client's window, so the server's speed in each
window is known: on a shared machine the server itself can be slower while one client runs,
and then the clients must not be blamed for it.

inference-perf needs Python >= 3.12 and its own virtualenv (default
benchmarks/.peers/inference-perf, ignored by git). When that virtualenv is missing it is
created from the first Python >= 3.12 found (--python, python3.12/python3.13 on PATH, then
pyenv's versions) and inference-perf==0.7.0 is pip-installed into it: this step needs access
to the package registry, once. The run itself downloads nothing: inference-perf's tokenizer is
built locally in a temporary folder (one token per 4 characters, as the simulator counts) and
it runs with HF_HUB_OFFLINE=1.

    .venv/bin/python benchmarks/bench_vs_inference_perf.py [--rounds 4] [--rate 4] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tokenway.bench.config import parse_bench_config
from tokenway.bench.headline import Metric, value
from tokenway.bench.session import run_benchmark

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "bench_vs_inference_perf.json"
DEFAULT_VENV = ROOT / ".peers" / "inference-perf"
PEER = "inference-perf==0.7.0"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
PROFILE = "h100-8b"
INPUT_TOKENS = 512
OUTPUT_TOKENS = 64

THROUGHPUT_TOLERANCE = 0.02
LATENCY_TOLERANCE = 0.10
SERVER_AGREEMENT = 0.05
NORMALISED_TOLERANCE = 0.05
NOT_APPLICABLE = "not applicable: the server's own means differed by more than 5 % between windows"

# Both report layouts share these keys (tokenway writes the inference-perf lifecycle layout).
METRICS = (
    Metric("requests/s", ("successes", "throughput", "requests_per_sec"), True, "req/s"),
    Metric("output tokens/s", ("successes", "throughput", "output_tokens_per_sec"), True, "tok/s"),
    Metric("TTFT mean", ("successes", "latency", "time_to_first_token", "mean"), False, "s"),
    Metric("TTFT p50", ("successes", "latency", "time_to_first_token", "median"), False, "s"),
    Metric("TTFT p90", ("successes", "latency", "time_to_first_token", "p90"), False, "s"),
    Metric("TPOT mean", ("successes", "latency", "time_per_output_token", "mean"), False, "s"),
    Metric("TPOT p50", ("successes", "latency", "time_per_output_token", "median"), False, "s"),
    Metric("TPOT p90", ("successes", "latency", "time_per_output_token", "p90"), False, "s"),
    Metric("ITL mean", ("successes", "latency", "inter_token_latency", "mean"), False, "s"),
    Metric("ITL p50", ("successes", "latency", "inter_token_latency", "median"), False, "s"),
    Metric("latency p50", ("successes", "latency", "request_latency", "median"), False, "s"),
    Metric("successes", ("successes", "count"), True, ""),
    Metric("failures", ("failures", "count"), False, ""),
)
THROUGHPUT_CHECKED = ("requests/s", "output tokens/s")
LATENCY_CHECKED = ("TTFT p50", "TPOT p50", "ITL p50")
# Client means set against the simulator's mean of the same quantity (TPOT against its ITL).
SERVER_MATCHED = {"TTFT mean": "ttft_mean", "TPOT mean": "itl_mean", "ITL mean": "itl_mean"}

TOKENIZER_SCRIPT = r"""
import json, sys
from pathlib import Path
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

out = Path(sys.argv[1])
consonants, vowels = "bcdfghklmnprstvz", "aeiou"
words = [a + v + b + " " for a in consonants for v in vowels for b in consonants]
vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"(?m).{1,4}"), behavior="isolated")
tok.decoder = decoders.Fuse()
tok.save(str(out / "tokenizer.json"))
(out / "tokenizer_config.json").write_text(json.dumps({
    "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "eos_token": "[UNK]",
    "bos_token": None, "model_max_length": 131072, "clean_up_tokenization_spaces": False}))
(out / "config.json").write_text(json.dumps({"model_type": "llama"}))
assert len(tok.encode("x" * 2048).ids) == 512
"""


@dataclass(frozen=True, slots=True)
class ServerWindow:
    """What the simulator itself measured while one client ran."""

    ttft_mean: float
    itl_mean: float
    requests: int


@dataclass(frozen=True, slots=True)
class Window:
    client: str
    report: dict[str, Any]
    server: ServerWindow
    seconds: float


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def _find_python(given: str | None) -> str:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    numbered = sorted(
        pyenv.glob("3.*/bin/python3"),
        key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.parent.parent.name)),
    )
    on_path = [shutil.which(name) for name in ("python3.12", "python3.13")]
    candidates = [given] if given else [*on_path, *map(str, numbered)]
    for python in candidates:
        if python and (_python_version(python) or (0, 0)) >= (3, 12):
            return python
    raise SystemExit("no Python >= 3.12 found for inference-perf; pass --python PATH")


def _peer_venv(venv: Path, python: str | None) -> Path:
    """The virtualenv's python with inference-perf 0.7.0, creating and installing as needed."""
    peer = venv / "bin" / "python"
    check = "import importlib.metadata as m; assert m.version('inference-perf') == '0.7.0'"
    if peer.exists():
        installed = subprocess.run([peer, "-c", check], capture_output=True, timeout=120)
        if installed.returncode == 0:
            return peer
    if not peer.exists():
        base = _find_python(python)
        print(f"creating {venv} with {base}", flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    print(f"installing {PEER} into {venv} (package registry)", flush=True)
    subprocess.run([peer, "-m", "pip", "install", "--quiet", PEER], check=True, timeout=900)
    return peer


def _offline_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _build_tokenizer(peer: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    subprocess.run(
        [peer, "-c", TOKENIZER_SCRIPT, str(folder)], check=True, timeout=120, env=_offline_env()
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _stop(process: asyncio.subprocess.Process, grace: float = 10.0) -> None:
    """SIGTERM to the process group we started, then SIGKILL after `grace` seconds."""
    if process.returncode is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            continue


async def _wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with http.get(f"{url}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise SystemExit(f"simulator at {url} not ready after 60 s") from None


async def _server_counters(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Sums and counts of the simulator's TTFT and ITL histograms."""
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    wanted = {
        f"vllm:{name}_seconds_{part}"
        for name in ("time_to_first_token", "inter_token_latency")
        for part in ("sum", "count")
    }
    counters = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                counters[sample.name] += sample.value
    return counters


def _server_window(before: Mapping[str, float], after: Mapping[str, float]) -> ServerWindow:
    def mean(name: str) -> float:
        count = after[f"vllm:{name}_seconds_count"] - before[f"vllm:{name}_seconds_count"]
        total = after[f"vllm:{name}_seconds_sum"] - before[f"vllm:{name}_seconds_sum"]
        return total / count if count else float("nan")

    requests = after["vllm:time_to_first_token_seconds_count"]
    requests -= before["vllm:time_to_first_token_seconds_count"]
    return ServerWindow(mean("time_to_first_token"), mean("inter_token_latency"), int(requests))


async def _run_tokenway(url: str, output: Path, rate: float, duration: float, seed: int) -> None:
    config = parse_bench_config(
        {
            "targets": [{"url": url}],
            "model": MODEL,
            "output": str(output),
            "seed": seed,
            "load": {"arrivals": "constant", "stages": [{"rate": rate, "duration": duration}]},
            "data": {
                "type": "synthetic",
                "api": "completion",
                "inputTokens": {"mean": INPUT_TOKENS},
                "outputTokens": {"mean": OUTPUT_TOKENS},
            },
        },
        "bench_vs_inference_perf",
        None,
    )
    run = run_benchmark(config, lambda record: None, lambda target, index, stage: None)
    await asyncio.wait_for(run, duration + 180)


def _inference_perf_config(
    url: str, tokenizer: Path, output: Path, rate: float, duration: float
) -> dict[str, Any]:
    def fixed(tokens: int) -> dict[str, Any]:
        return {"type": "fixed", "min": tokens, "max": tokens, "mean": tokens, "std_dev": 0}

    return {
        "load": {
            "type": "constant",
            "interval": 2,
            "stages": [{"rate": rate, "duration": duration}],
            "num_workers": 1,
        },
        "api": {"type": "completion", "streaming": True},
        "server": {"type": "vllm", "model_name": MODEL, "base_url": url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
        "data": {
            "type": "random",
            "input_distribution": fixed(INPUT_TOKENS),
            "output_distribution": fixed(OUTPUT_TOKENS),
        },
        "report": {
            "request_lifecycle": {
                "summary": True,
                "per_stage": True,
                "per_request": False,
                "use_server_output_tokens": True,
            },
            "prometheus": None,
        },
        "storage": {"local_storage": {"path": str(output)}},
    }


async def _run_inference_perf(
    peer: Path, url: str, tokenizer: Path, output: Path, rate: float, duration: float
) -> None:
    config = output.with_suffix(".yml")
    config.write_text(
        yaml.safe_dump(_inference_perf_config(url, tokenizer, output, rate, duration))
    )
    log = output.with_suffix(".log")
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(peer.parent / "inference-perf"),
            "-c",
            str(config),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_offline_env(),
            start_new_session=True,
        )
        try:
            code = await asyncio.wait_for(process.wait(), duration + 180)
        finally:
            await _stop(process)
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"inference-perf exited with {code}:\n{tail}")


async def _window(
    http: aiohttp.ClientSession, url: str, client: str, run: Awaitable[None], output: Path
) -> Window:
    before = await _server_counters(http, url)
    started = time.monotonic()
    await run
    seconds = time.monotonic() - started
    after = await _server_counters(http, url)
    report = json.loads((output / "summary_lifecycle_metrics.json").read_text())
    return Window(client, report, _server_window(before, after), seconds)


async def _rounds(args: argparse.Namespace, peer: Path, work: Path) -> list[list[Window]]:
    tokenizer = work / "tokenizer"
    _build_tokenizer(peer, tokenizer)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenway",
        "sim",
        "--port",
        str(port),
        "--profile",
        PROFILE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    rounds: list[list[Window]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await _wait_ready(http, url)
            for index in range(args.rounds):
                order = (
                    ("inference-perf", "tokenway")
                    if index % 2 == 0
                    else ("tokenway", "inference-perf")
                )
                windows = []
                for client in order:
                    output = work / f"{client}-{index}"
                    print(f"round {index + 1}/{args.rounds}: {client}", flush=True)
                    run = (
                        _run_tokenway(url, output, args.rate, args.duration, seed=index)
                        if client == "tokenway"
                        else _run_inference_perf(
                            peer, url, tokenizer, output, args.rate, args.duration
                        )
                    )
                    windows.append(await _window(http, url, client, run, output))
                rounds.append(sorted(windows, key=lambda w: w.client))
    finally:
        await _stop(sim)
    return rounds


def _ratio(x: float | None, base: float | None) -> float | None:
    return x / base if x is not None and base else None


def _relative_to_server(window: Window) -> dict[str, float | None]:
    """Each client mean over the server's own mean in the same window."""
    by_label = {m.label: m for m in METRICS}
    server = {"ttft_mean": window.server.ttft_mean, "itl_mean": window.server.itl_mean}
    return {
        label: _ratio(value(window.report, by_label[label]), server[key])
        for label, key in SERVER_MATCHED.items()
    }


def _compare(ip: Window, tw: Window) -> dict[str, Any]:
    metrics = {}
    for metric in METRICS:
        a, b = value(ip.report, metric), value(tw.report, metric)
        metrics[metric.label] = {"inference-perf": a, "tokenway": b, "ratio": _ratio(b, a)}
    relative = {w.client: _relative_to_server(w) for w in (ip, tw)}
    return {
        "metrics": metrics,
        "server": {
            w.client: {
                "ttft_mean": w.server.ttft_mean,
                "itl_mean": w.server.itl_mean,
                "requests": w.server.requests,
                "window_seconds": w.seconds,
            }
            for w in (ip, tw)
        },
        "server_ratio": {
            "ttft_mean": tw.server.ttft_mean / ip.server.ttft_mean,
            "itl_mean": tw.server.itl_mean / ip.server.itl_mean,
        },
        "relative_to_server": relative,
        "server_normalised_ratio": {
            label: _ratio(relative["tokenway"][label], relative["inference-perf"][label])
            for label in SERVER_MATCHED
        },
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _medians(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    metrics = {}
    for metric in METRICS:
        a = _median([r["metrics"][metric.label]["inference-perf"] for r in rounds])
        b = _median([r["metrics"][metric.label]["tokenway"] for r in rounds])
        metrics[metric.label] = {"inference-perf": a, "tokenway": b, "ratio": _ratio(b, a)}
    server = {
        c: {k: _median([r["server"][c][k] for r in rounds]) for k in ("ttft_mean", "itl_mean")}
        for c in ("inference-perf", "tokenway")
    }
    return {
        "metrics": metrics,
        "server": server,
        "server_ratio": {
            k: _ratio(server["tokenway"][k], server["inference-perf"][k])
            for k in ("ttft_mean", "itl_mean")
        },
        "server_normalised_ratio": {
            label: _median([r["server_normalised_ratio"][label] for r in rounds])
            for label in SERVER_MATCHED
        },
    }


def _within(ratio: float | None, tolerance: float) -> bool:
    return ratio is not None and abs(ratio - 1) <= tolerance


def _verdict(median: Mapping[str, Any]) -> dict[str, Any]:
    """Checks on the medians over rounds. Raw latency is only comparable when the server was
    equally fast in both clients' windows; when it was not, that check does not apply and the
    latency verdict rests on the server-normalised check alone, which the overall verdict says."""
    metrics = median["metrics"]
    server_equal = all(_within(r, SERVER_AGREEMENT) for r in median["server_ratio"].values())
    raw = all(_within(metrics[m]["ratio"], LATENCY_TOLERANCE) for m in LATENCY_CHECKED)
    normalised = median["server_normalised_ratio"].values()
    checks = {
        "throughput": _outcome(
            all(_within(metrics[m]["ratio"], THROUGHPUT_TOLERANCE) for m in THROUGHPUT_CHECKED)
        ),
        "latency": _outcome(raw) if server_equal else NOT_APPLICABLE,
        "latency_vs_server": _outcome(all(_within(r, NORMALISED_TOLERANCE) for r in normalised)),
        "no_failures": _outcome(
            not metrics["failures"]["inference-perf"] and not metrics["failures"]["tokenway"]
        ),
    }
    outcomes = set(checks.values())
    if "fail" in outcomes:
        overall = "fail"
    elif outcomes == {"pass"}:
        overall = "pass"
    else:
        overall = "pass against the server's own numbers; raw latency not comparable in this run"
    return {"checks": checks, "overall": overall}


def _outcome(ok: bool) -> str:
    return "pass" if ok else "fail"


def _show(number: float | None, unit: str) -> str:
    if number is None:
        return "-"
    if unit == "s":
        return f"{number * 1000:.2f} ms"
    return f"{number:.3f}" if unit == "req/s" else f"{number:.1f}" if unit else f"{number:.0f}"


def _print_table(
    rounds: Sequence[Mapping[str, Any]], median: Mapping[str, Any], verdict: Mapping[str, Any]
) -> None:
    header = f"{'median of ' + str(len(rounds)) + ' rounds':24s}"
    rounds_header = " ".join(f"{'r' + str(i + 1):>6s}" for i in range(len(rounds)))
    print(f"\n{header} {'inference-perf':>15s} {'tokenway':>12s} {'ratio':>6s}  {rounds_header}")

    def row(label: str, a: str, b: str, ratio: float | None, per_round: list[float | None]) -> None:
        cells = " ".join(f"{'-' if r is None else f'{r:.3f}':>6s}" for r in per_round)
        shown = "-" if ratio is None else f"{ratio:.3f}"
        print(f"{label:24s} {a:>15s} {b:>12s} {shown:>6s}  {cells}")

    for metric in METRICS:
        m = median["metrics"][metric.label]
        per_round = [r["metrics"][metric.label]["ratio"] for r in rounds]
        a, b = (_show(m[c], metric.unit) for c in ("inference-perf", "tokenway"))
        row(metric.label, a, b, m["ratio"], per_round)
    for key, label in (("ttft_mean", "server TTFT mean"), ("itl_mean", "server ITL mean")):
        a, b = (_show(median["server"][c][key], "s") for c in ("inference-perf", "tokenway"))
        row(label, a, b, median["server_ratio"][key], [r["server_ratio"][key] for r in rounds])
    for label in SERVER_MATCHED:
        per_round = [r["server_normalised_ratio"][label] for r in rounds]
        row(f"{label} / server's", "", "", median["server_normalised_ratio"][label], per_round)
    for name, outcome in verdict["checks"].items():
        print(f"check {name}: {outcome}")
    print(f"overall: {verdict['overall']}")


def _run_async(coro: Coroutine[Any, Any, list[list[Window]]]) -> list[list[Window]]:
    """On uvloop where available, as `tokenway bench` runs: its scheduling lag is the loop's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--python", help="a Python >= 3.12 to create the virtualenv with")
    args = parser.parse_args()
    peer = _peer_venv(args.venv, args.python)
    with tempfile.TemporaryDirectory(prefix="bench_vs_ip-") as work:
        rounds = _run_async(_rounds(args, peer, Path(work)))
    compared = [_compare(*windows) for windows in rounds]
    median = _medians(compared)
    verdict = _verdict(median)
    result = {
        "workload": {
            "target": f"tokenway sim --profile {PROFILE}",
            "api": "completion, streaming, ignore_eos",
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "arrivals": "constant",
            "rate": args.rate,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "order": "inference-perf first in odd rounds, tokenway first in even rounds",
        },
        "inference_perf": PEER,
        "tolerance": {
            "throughput": f"requests/s and output tokens/s within {THROUGHPUT_TOLERANCE:.0%}",
            "latency": f"TTFT, TPOT and ITL p50 within {LATENCY_TOLERANCE:.0%}, checked only "
            f"when the server's own TTFT and ITL means of the two windows agree within "
            f"{SERVER_AGREEMENT:.0%}",
            "latency_vs_server": "each client's TTFT, TPOT and ITL means divided by the "
            "server's own TTFT and ITL means in that client's window: tokenway's within "
            f"{NORMALISED_TOLERANCE:.0%} of inference-perf's",
            "on": "medians over rounds; ratios are tokenway / inference-perf",
        },
        "rounds": compared,
        "median": median,
        "verdict": verdict,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(compared, median, verdict)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
