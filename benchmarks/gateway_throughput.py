"""Gateway throughput and added latency against an instant backend, with peers, in one run.

Each server runs in its own process on 127.0.0.1: the simulator with its `instant` profile (no
engine time) as the backend, then tokenway standalone, the LiteLLM proxy (granian, 2 workers)
and the Rust vllm-router (round robin) in front of it. Load comes from wrk (C, so the client is
never the bottleneck), closed-loop at a fixed concurrency, non-streaming and streaming chat with
16 output tokens. Targets are interleaved round by round; each cell reports the median round.

    python benchmarks/gateway_throughput.py [--seconds 8] [--rounds 2] [--peers DIR]

Peers are installed on first use into --peers (one venv each, as their pins conflict):
litellm[proxy]==1.108.7 and vllm-router. Needs `wrk` (Debian package wrk).
Writes benchmarks/results/gateway_throughput.json and .png.
"""

from __future__ import annotations

import argparse
import contextlib
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
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
SERVED = "meta-llama/Llama-3.1-8B-Instruct"
MASTER_KEY = "sk-bench-0000"
PEERS = {
    "litellm": ("litellm", "litellm[proxy]==1.108.7"),
    "vllm-router": ("vllm-router", "vllm-router==0.1.17"),
}
WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format('JSON {"requests": %d, "seconds": %f, "errors": %d, "non2xx": %d, '
    .. '"p50": %f, "p90": %f, "p99": %f}\n', summary.requests, summary.duration / 1e6, errors,
    summary.errors.status, latency:percentile(50) / 1e6, latency:percentile(90) / 1e6,
    latency:percentile(99) / 1e6))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


def peer_bin(peers: Path, name: str) -> Path:
    folder, requirement = PEERS[name]
    venv = peers / folder
    binary = venv / "bin" / name
    if not binary.exists():
        print(f"installing {requirement} into {venv} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", requirement], check=True)
    return binary


@contextmanager
def process(argv: list[str], health: str, env: dict[str, str] | None = None) -> Iterator[int]:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        wait_http(health)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tokenway_config(folder: Path, port: int, backend: int) -> Path:
    path = folder / "tokenway.yaml"
    path.write_text(
        f"gateway: {{listen: '127.0.0.1:{port}', accessLog: false}}\n"
        f"pools: [{{name: sim, endpoints: ['127.0.0.1:{backend}'],"
        " scheduler: {profile: round-robin}}]\n"
        f"models: [{{name: chat, pool: sim, model: {SERVED}}}]\n"
    )
    return path


def litellm_config(folder: Path, backend: int) -> Path:
    path = folder / "litellm.yaml"
    path.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": "chat",
                        "litellm_params": {
                            "model": f"openai/{SERVED}",
                            "api_base": f"http://127.0.0.1:{backend}/v1",
                            "api_key": "dummy",
                            "input_cost_per_token": 1e-9,
                            "output_cost_per_token": 1e-9,
                        },
                    }
                ],
                "litellm_settings": {"num_retries": 0, "callbacks": []},
                "general_settings": {"master_key": MASTER_KEY, "disable_spend_logs": True},
            }
        )
    )
    return path


def run_wrk(url: str, body: dict[str, Any], concurrency: int, seconds: float, script: Path) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, concurrency)),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BODY": json.dumps(body), "KEY": MASTER_KEY},
        check=True,
    ).stdout
    match = re.search(r"^JSON (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    result = json.loads(match.group(1))
    result["rps"] = (result["requests"] - result["non2xx"]) / result["seconds"]
    return result


def overhead_p50(metrics_url: str) -> float | None:
    """Median of tokenway_proxy_overhead_seconds from its histogram buckets."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    buckets = [
        (float(le), float(value))
        for le, value in re.findall(
            r'^tokenway_proxy_overhead_seconds_bucket\{le="([^"]+)"\} (\S+)$', text, re.M
        )
    ]
    if not buckets or buckets[-1][1] == 0:
        return None
    half = buckets[-1][1] / 2
    previous_le, previous_count = 0.0, 0.0
    for le, count in buckets:
        if count >= half:
            if le == float("inf"):
                return previous_le
            share = (half - previous_count) / max(count - previous_count, 1e-9)
            return previous_le + share * (le - previous_le)
        previous_le, previous_count = le, count
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--peers", type=Path, default=Path(__file__).parent / ".peers")
    parser.add_argument("--skip-peers", action="store_true", help="only direct and tokenway")
    parser.add_argument(
        "--name", default="gateway_throughput", help="results file name (without extension)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    tokenway = [sys.executable, "-m", "tokenway"]
    backend, gateway = free_port(), free_port()
    litellm_port, router_port, router_metrics = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        script = folder / "post.lua"
        script.write_text(WRK_SCRIPT)
        stack.enter_context(
            process(
                [*tokenway, "sim", "--port", str(backend), "--profile", "instant"],
                f"http://127.0.0.1:{backend}/health",
            )
        )
        targets: dict[str, tuple[str, str]] = {
            "direct": (f"http://127.0.0.1:{backend}/v1/chat/completions", SERVED)
        }
        stack.enter_context(
            process(
                [*tokenway, "serve", "-c", str(tokenway_config(folder, gateway, backend))],
                f"http://127.0.0.1:{gateway}/health",
            )
        )
        targets["tokenway"] = (f"http://127.0.0.1:{gateway}/v1/chat/completions", "chat")
        if not args.skip_peers:
            litellm = peer_bin(args.peers, "litellm")
            stack.enter_context(
                process(
                    [
                        str(litellm),
                        "--config",
                        str(litellm_config(folder, backend)),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(litellm_port),
                        "--num_workers",
                        "2",
                        "--run_granian",
                    ],
                    f"http://127.0.0.1:{litellm_port}/health/liveliness",
                    env={
                        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                        "LITELLM_TELEMETRY_DISABLED": "True",
                        "LITELLM_MODE": "PRODUCTION",
                        "LITELLM_LOG": "ERROR",
                        "LITELLM_MASTER_KEY": MASTER_KEY,
                    },
                )
            )
            targets["litellm"] = (f"http://127.0.0.1:{litellm_port}/v1/chat/completions", "chat")
            router = peer_bin(args.peers, "vllm-router")
            stack.enter_context(
                process(
                    [
                        str(router),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(router_port),
                        "--worker-urls",
                        f"http://127.0.0.1:{backend}",
                        "--policy",
                        "round_robin",
                        "--prometheus-host",
                        "127.0.0.1",
                        "--prometheus-port",
                        str(router_metrics),
                        "--worker-startup-check-interval",
                        "1",
                        "--log-level",
                        "warning",
                    ],
                    f"http://127.0.0.1:{router_port}/health",
                )
            )
            targets["vllm-router"] = (
                f"http://127.0.0.1:{router_port}/v1/chat/completions",
                SERVED,
            )
        cells: dict[str, dict[str, list[dict]]] = {}
        scenarios = [
            (f"{'stream' if stream else 'json'}-c{c}", stream, c)
            for stream in (False, True)
            for c in args.concurrency
        ]
        for url, model in targets.values():
            # Warm up connection pools and caches; not measured.
            run_wrk(
                url,
                {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
                32,
                2,
                script,
            )
        for round_ in range(args.rounds):
            for name, stream, concurrency in scenarios:
                for target, (url, model) in targets.items():
                    body = {
                        "model": model,
                        "messages": [{"role": "user", "content": "Say something short."}],
                        "max_tokens": 16,
                        "stream": stream,
                    }
                    result = run_wrk(url, body, concurrency, args.seconds, script)
                    cells.setdefault(name, {}).setdefault(target, []).append(result)
                    print(
                        f"round {round_} {name:12} {target:12} {result['rps']:8.0f} req/s"
                        f"  p50 {result['p50'] * 1000:7.2f} ms  non-2xx {result['non2xx']}",
                        flush=True,
                    )
        tokenway_overhead = overhead_p50(f"http://127.0.0.1:{gateway}/metrics")
    report = summarise(cells, tokenway_overhead, args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    plot(report, RESULTS / f"{args.name}.png")
    print(json.dumps(report["ratios"], indent=2))


def _median_cell(runs: list[dict]) -> dict:
    # A round in which the target answered nothing (LiteLLM stops answering after heavy
    # streaming load here) is counted, not averaged in.
    answered = [r for r in runs if r["rps"] > 0] or runs
    return {
        "rps": statistics.median(r["rps"] for r in answered),
        "p50_ms": statistics.median(r["p50"] for r in answered) * 1000,
        "p99_ms": statistics.median(r["p99"] for r in answered) * 1000,
        "errors": sum(r["errors"] + r["non2xx"] for r in runs),
        "rounds": len(runs),
        "rounds_without_answers": sum(r["rps"] == 0 for r in runs),
        "per_round_rps": [round(r["rps"], 1) for r in runs],
    }


def summarise(cells: dict[str, dict[str, list[dict]]], overhead: float | None, args: Any) -> dict:
    median = {
        scenario: {target: _median_cell(runs) for target, runs in by_target.items()}
        for scenario, by_target in cells.items()
    }
    ratios: dict[str, dict[str, float]] = {}
    for scenario, by_target in median.items():
        tw = by_target["tokenway"]["rps"]
        ratios[scenario] = {
            f"tokenway/{other}": tw / values["rps"]
            for other, values in by_target.items()
            if other != "tokenway" and values["rps"] > 0
        }
        ratios[scenario]["added_p50_ms_vs_direct"] = (
            by_target["tokenway"]["p50_ms"] - by_target["direct"]["p50_ms"]
        )
    return {
        "command": "python benchmarks/gateway_throughput.py "
        f"--seconds {args.seconds} --rounds {args.rounds} "
        f"--concurrency {' '.join(map(str, args.concurrency))} --name {args.name}"
        + (" --skip-peers" if args.skip_peers else ""),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "backend": "tokenway sim --profile instant (one process)",
        "results": median,
        "ratios": ratios,
        "tokenway_in_gateway_overhead_p50_ms": None if overhead is None else overhead * 1000,
    }


def plot(report: dict, path: Path) -> None:
    scenarios = list(report["results"])
    targets = list(next(iter(report["results"].values())))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        values = [report["results"][s][target]["rps"] for s in scenarios]
        ax.bar([x + i * width for x in range(len(scenarios))], values, width, label=target)
    ax.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(scenarios))], scenarios)
    ax.set_ylabel("requests/s (instant backend, 16 output tokens)")
    ax.set_title("Gateway throughput on this machine, same backend, same run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
