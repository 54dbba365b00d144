"""Memory of the gateway process over many requests: does its RSS stay bounded?

The simulator (`instant` profile) is the backend; tokenway serve runs in its own process; wrk
drives closed-loop load in slices, and after each slice the gateway's resident set size is read
from /proc. Stops at --requests (default one million) or --minutes, whichever comes first.

    python benchmarks/gateway_memory.py [--requests 1000000] [--minutes 30] [--concurrency 64]

Writes benchmarks/results/gateway_memory.json and .png (RSS against requests served).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import matplotlib

from gateway_throughput import (
    RESULTS,
    SERVED,
    WRK_SCRIPT,
    free_port,
    process,
    run_wrk,
    tokenway_config,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--slice", type=int, default=20, help="seconds of load between samples")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    tokenway = [sys.executable, "-m", "tokenway"]
    backend, gateway = free_port(), free_port()
    samples: list[dict[str, float]] = []
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        script = folder / "post.lua"
        script.write_text(WRK_SCRIPT)
        stack.enter_context(
            process(
                [*tokenway, "sim", "--port", str(backend), "--profile", "instant"],
                f"http://127.0.0.1:{backend}/health",
            )
        )
        pid = stack.enter_context(
            process(
                [*tokenway, "serve", "-c", str(tokenway_config(folder, gateway, backend))],
                f"http://127.0.0.1:{gateway}/health",
            )
        )
        url = f"http://127.0.0.1:{gateway}/v1/chat/completions"
        served = 0
        samples.append({"requests": 0, "rss_mib": rss_mib(pid), "seconds": 0.0})
        started = time.monotonic()
        while served < args.requests and time.monotonic() < deadline:
            body = {
                "model": "chat",
                "messages": [{"role": "user", "content": f"request {served}: say hi"}],
                "max_tokens": 16,
                "stream": len(samples) % 2 == 0,
            }
            result = run_wrk(url, body, args.concurrency, args.slice, script)
            served += result["requests"]
            sample = {
                "requests": served,
                "rss_mib": rss_mib(pid),
                "seconds": time.monotonic() - started,
                "errors": result["errors"] + result["non2xx"],
            }
            samples.append(sample)
            print(
                f"{served:>9} requests  RSS {sample['rss_mib']:7.1f} MiB  "
                f"{result['rps']:6.0f} req/s",
                flush=True,
            )
    warm = next((s for s in samples if s["requests"] >= 50_000), samples[-1])
    report = {
        "command": "python benchmarks/gateway_memory.py "
        f"--requests {args.requests} --minutes {args.minutes:g} "
        f"--concurrency {args.concurrency} --slice {args.slice}",
        "backend": f"tokenway sim --profile instant ({SERVED})",
        "requests": served,
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_after_warmup_mib": warm["rss_mib"],
        "rss_end_mib": samples[-1]["rss_mib"],
        "growth_after_warmup_mib": samples[-1]["rss_mib"] - warm["rss_mib"],
        "samples": samples,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway_memory.json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s["requests"] for s in samples], [s["rss_mib"] for s in samples], marker="o")
    ax.set_xlabel("requests served")
    ax.set_ylabel("gateway RSS (MiB)")
    ax.set_ylim(0, max(s["rss_mib"] for s in samples) * 1.2)
    ax.set_title("tokenway gateway memory under sustained load")
    fig.tight_layout()
    fig.savefig(RESULTS / "gateway_memory.png", dpi=120)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
