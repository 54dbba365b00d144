"""Routing in real time: the gateway's scheduler profiles and vllm-router in front of one fleet.

One simulated fleet of 4 replicas of the Llama-3.1-8B / H100 profile (`tokenway sim fleet`), and
in front of it, each in its own process: `tokenway serve` with the round-robin, default
(reference weights) and tokenway profiles, and the Rust vllm-router (PyPI `vllm-router`) with its
cache_aware and round_robin policies. Every target gets the same shared-prefix workload (tenants
with a long shared context, short questions, streamed answers) from tokenway's load generator,
in windows that rotate over the targets for two rounds, so slow drift of the shared machine falls
on all of them.

The fleet's prefix cache is shared by all targets, so each target's contexts start with its own
salt: a target never hits another target's cached blocks, and the fleet's KV cache (about 410k
tokens per replica) holds every target's contexts on every replica, so nothing is evicted and a
cache miss is always a routing decision. Reports p50/p90 TTFT, output throughput, ratios against
the gateway's round robin, and per target the fleet's prefix-cache hit rate and each replica's
share of the requests (from the replicas' /metrics before and after each window).

    .venv/bin/python benchmarks/routing_realtime.py [--rate 4] [--duration 60]

Writes benchmarks/results/routing_realtime.json and routing_realtime.png. vllm-router is
installed on first use into --peers (as benchmarks/gateway_throughput.py does); with
--skip-peers only the gateway is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from prometheus_client.parser import text_string_to_metric_families
from rich.progress import Progress

from gateway_throughput import peer_bin, wait_http
from tokenway.bench.client import BenchClient, ClientOptions, Target
from tokenway.bench.datasets import SharedPrefix, fixed
from tokenway.bench.load import RateStage, rate_workload
from tokenway.bench.record import RequestRecord
from tokenway.bench.runner import run_rate_stage
from tokenway.bench.stats import distribution
from tokenway.bench.workload import WorkloadRequest

RESULTS = Path(__file__).parent / "results"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
REPLICAS = 4
SIM_PROFILE = "h100-8b"
ROUNDS = 2
BASELINE = "round-robin"
GATEWAY_PROFILES = ("round-robin", "default", "tokenway")
ROUTER_POLICIES = ("cache_aware", "round_robin")
COUNTERS = ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries", "vllm:request_success")


def free_port(span: int = 1) -> int:
    """A port whose next `span - 1` ports are free too (the fleet listens on base + i)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + span > 65535:
            continue
        try:
            for offset in range(1, span):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


@contextmanager
def process(argv: list[str], health: Sequence[str], log: Path) -> Iterator[int]:
    """Runs `argv` in its own process group until the block ends, then stops it by its PID."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for url in health:
            wait_http(url)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def gateway_config(folder: Path, port: int, replicas: Sequence[int], profile: str) -> Path:
    path = folder / f"gateway-{profile}.yaml"
    endpoints = ", ".join(f"'http://127.0.0.1:{p}'" for p in replicas)
    path.write_text(
        f"gateway: {{listen: '127.0.0.1:{port}', accessLog: false}}\n"
        f"pools: [{{name: sim, engine: vllm, endpoints: [{endpoints}],"
        f" scheduler: {{profile: {profile}}}}}]\n"
        f"models: [{{name: '{MODEL}', pool: sim, model: '{MODEL}'}}]\n"
    )
    return path


def fleet_counters(replicas: Sequence[int]) -> list[dict[str, float]]:
    """Each replica's prefix-cache and finished-request counters, from its /metrics."""
    out = []
    for port in replicas:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        values = dict.fromkeys(COUNTERS, 0.0)
        for family in text_string_to_metric_families(text):
            if family.name in values:
                values[family.name] += sum(
                    s.value for s in family.samples if s.name.endswith("_total")
                )
        out.append(values)
    return out


def salted(requests: Sequence[WorkloadRequest], salt: str) -> list[WorkloadRequest]:
    """The same requests with the target's name in front of every prompt, so targets never share
    cached prefixes on the fleet while lengths and structure stay identical."""
    out = []
    for request in requests:
        first, *rest = request.messages
        first = {**first, "content": f"[{salt}] {first['content']}"}
        out.append(dataclasses.replace(request, messages=(first, *rest)))
    return out


def windows(requests: Sequence[WorkloadRequest], span: float) -> list[list[WorkloadRequest]]:
    """The workload cut into ROUNDS consecutive windows, each with arrivals from 0."""
    out: list[list[WorkloadRequest]] = [[] for _ in range(ROUNDS)]
    for request in requests:
        index = min(int(request.arrival // span), ROUNDS - 1)
        out[index].append(dataclasses.replace(request, arrival=request.arrival - index * span))
    return out


async def measure(
    targets: dict[str, str],
    replicas: Sequence[int],
    requests: Sequence[WorkloadRequest],
    duration: float,
) -> dict[str, dict[str, Any]]:
    span = duration / ROUNDS
    plan = {name: windows(salted(requests, name), span) for name in targets}
    names = list(targets)
    records: dict[str, list[RequestRecord]] = {name: [] for name in names}
    elapsed = dict.fromkeys(names, 0.0)
    per_replica = {name: [dict.fromkeys(COUNTERS, 0.0) for _ in replicas] for name in names}
    options = ClientOptions(model=MODEL, timeout=120.0)
    origin = time.monotonic()
    with Progress() as progress:
        task = progress.add_task("windows", total=ROUNDS * len(names))
        for round_index in range(ROUNDS):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            if round_index % 2:
                order.reverse()
            for name in order:
                progress.update(task, description=f"round {round_index + 1}: {name}")
                before = fleet_counters(replicas)
                async with BenchClient(Target(name, targets[name]), options, origin) as client:
                    start = client.now()
                    window = await run_rate_stage(
                        client, plan[name][round_index], round_index, lambda _: None
                    )
                    elapsed[name] += client.now() - start
                after = fleet_counters(replicas)
                records[name].extend(window)
                for total, b, a in zip(per_replica[name], before, after, strict=True):
                    for key in COUNTERS:
                        total[key] += a[key] - b[key]
                progress.advance(task)
    return {name: summarize(records[name], per_replica[name], elapsed[name]) for name in names}


def summarize(
    records: Sequence[RequestRecord], per_replica: Sequence[dict[str, float]], elapsed: float
) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    ttft = distribution([t for r in ok if (t := r.ttft) is not None]) or {}
    hits = sum(r["vllm:prefix_cache_hits"] for r in per_replica)
    queries = sum(r["vllm:prefix_cache_queries"] for r in per_replica)
    finished = [r["vllm:request_success"] for r in per_replica]
    return {
        "requests": len(records),
        "failed": len(records) - len(ok),
        "errors": sorted({r.error for r in records if not r.ok and r.error})[:5],
        "ttft_p50": ttft.get("median"),
        "ttft_p90": ttft.get("p90"),
        "ttft_p99": ttft.get("p99"),
        "output_tokens_per_sec": sum(r.output_tokens for r in ok) / elapsed if elapsed else 0.0,
        "prefix_hit_rate": hits / queries if queries else None,
        "requests_per_replica": finished,
        "max_replica_share": max(finished) / sum(finished) if sum(finished) else None,
    }


def with_ratios(results: dict[str, dict[str, Any]]) -> None:
    base = results[BASELINE]
    for row in results.values():
        for key in ("ttft_p50", "ttft_p90", "output_tokens_per_sec"):
            value, reference = row[key], base[key]
            row[f"{key}_vs_round_robin"] = value / reference if value and reference else None


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    names = list(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = range(len(names))
    for offset, key, label in ((-0.2, "ttft_p50", "p50"), (0.2, "ttft_p90", "p90")):
        left.bar([i + offset for i in x], [results[n][key] or 0 for n in names], 0.4, label=label)
    left.set_xticks(list(x), names, rotation=20, ha="right")
    left.set_ylabel("TTFT (s)")
    left.set_title("time to first token")
    left.legend()
    right.bar(list(x), [results[n]["prefix_hit_rate"] or 0 for n in names])
    right.set_xticks(list(x), names, rotation=20, ha="right")
    right.set_ylim(0, 1)
    right.set_ylabel("prefix-cache hit rate (tokens)")
    right.set_title("fleet prefix-cache hit rate")
    fig.suptitle(f"Shared-prefix workload, {REPLICAS} simulated {SIM_PROFILE} replicas, real time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=4.0, help="requests/s per target")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per target")
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--context-tokens", type=int, default=4000)
    parser.add_argument("--question-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peers", type=Path, default=Path(__file__).parent / ".peers")
    parser.add_argument("--skip-peers", action="store_true", help="only the gateway profiles")
    args = parser.parse_args()

    data = SharedPrefix(
        num_groups=args.groups,
        prompts_per_group=100,
        system_prompt_len=args.context_tokens,
        question_len=fixed(args.question_tokens),
        output_len=fixed(args.output_tokens),
    )
    stage = RateStage(rate=args.rate, duration=args.duration)
    requests = rate_workload(data.stream(args.seed), stage, args.seed)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        base = free_port(REPLICAS)
        replicas = [base + i for i in range(REPLICAS)]
        stack.enter_context(
            process(
                [
                    sys.executable, "-m", "tokenway", "sim", "fleet",
                    "--replicas", str(REPLICAS), "--base-port", str(base),
                    "--profile", SIM_PROFILE, "--model", MODEL,
                ],
                [f"http://127.0.0.1:{p}/health" for p in replicas],
                folder / "fleet.log",
            )
        )  # fmt: skip
        targets: dict[str, str] = {}
        for profile in GATEWAY_PROFILES:
            port = free_port()
            config = gateway_config(folder, port, replicas, profile)
            stack.enter_context(
                process(
                    [sys.executable, "-m", "tokenway", "serve", "-c", str(config),
                     "--log-level", "warning"],
                    [f"http://127.0.0.1:{port}/health"],
                    folder / f"gateway-{profile}.log",
                )
            )  # fmt: skip
            targets[profile] = f"http://127.0.0.1:{port}"
        if not args.skip_peers:
            router = peer_bin(args.peers, "vllm-router")
            for policy in ROUTER_POLICIES:
                port, metrics = free_port(), free_port()
                stack.enter_context(
                    process(
                        [
                            str(router), "--host", "127.0.0.1", "--port", str(port),
                            "--worker-urls", *(f"http://127.0.0.1:{p}" for p in replicas),
                            "--policy", policy, "--prometheus-host", "127.0.0.1",
                            "--prometheus-port", str(metrics),
                            "--worker-startup-check-interval", "1", "--log-level", "warning",
                        ],
                        [f"http://127.0.0.1:{port}/health"],
                        folder / f"vllm-router-{policy}.log",
                    )
                )  # fmt: skip
                targets[f"vllm-router-{policy.replace('_', '-')}"] = f"http://127.0.0.1:{port}"
        # Let every gateway scrape the replicas' metrics before the first request.
        time.sleep(2.0)
        results = asyncio.run(measure(targets, replicas, requests, args.duration))

    with_ratios(results)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "setup": {
            "replicas": REPLICAS,
            "sim_profile": SIM_PROFILE,
            "rate": args.rate,
            "duration_per_target": args.duration,
            "rounds": ROUNDS,
            "groups": args.groups,
            "context_tokens": args.context_tokens,
            "question_tokens": args.question_tokens,
            "output_tokens": args.output_tokens,
            "seed": args.seed,
            "command": " ".join(["benchmarks/routing_realtime.py", *sys.argv[1:]]),
        },
        "results": results,
    }
    (RESULTS / "routing_realtime.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, RESULTS / "routing_realtime.png")
    print(
        "| target | TTFT p50 | p90 | p90 vs rr | output tok/s | vs rr | prefix hit | max replica |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        print(
            f"| {name} | {row['ttft_p50'] or 0:.3f} | {row['ttft_p90'] or 0:.3f} |"
            f" {row['ttft_p90_vs_round_robin'] or 0:.2f} | {row['output_tokens_per_sec']:.0f} |"
            f" {row['output_tokens_per_sec_vs_round_robin'] or 0:.2f} |"
            f" {row['prefix_hit_rate'] or 0:.2f} | {row['max_replica_share'] or 0:.2f} |"
            + (f" {row['failed']} failed" if row["failed"] else "")
        )


if __name__ == "__main__":
    main()
