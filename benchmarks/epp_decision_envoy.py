"""Picker decision latency at fixed request rates, with real Envoy generating the ext_proc load.

A Python gRPC client cannot offer 500 ext_proc streams/s on this machine (epp_decision_latency.py
shows it), so here the load is HTTP: `tokenway bench`'s client sends small non-streamed chat
requests at a constant rate to Envoy, and Envoy drives the picker exactly as in production
(BUFFERED bodies, FailClose so a slow picker is visible instead of bypassed). Measured per rate:
- decision latency: the picker's own `tokenway_proxy_overhead_seconds` histogram (first ext_proc
  message in, routing answer out), p50/p99 interpolated inside its buckets, over the stage;
- end to end: the client's latency through Envoy + picker against Envoy with plain round robin
  at the same rate (the same instant model server behind both), interleaved;
- the rate achieved and the client's scheduling lag, so a saturated setup is visible.

    python benchmarks/epp_decision_envoy.py [--rates 250,500,1000,2000] [--seconds 8]

Writes benchmarks/results/epp_decision_envoy.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from epp_common import backend_main, child, free_port, platform
from epp_dataplane import _envoy
from gateway_throughput import process
from tokenway.bench.client import BenchClient, ClientOptions, Target
from tokenway.bench.datasets import Synthetic, fixed
from tokenway.bench.load import RateStage, rate_workload
from tokenway.bench.runner import run_rate_stage
from tokenway.gateway.extproc.envoy import EnvoyProcess

RESULTS = Path(__file__).parent / "results" / "epp_decision_envoy.json"
DATASET = Synthetic(input_len=fixed(64), output_len=fixed(4))
_BUCKET = re.compile(r'^tokenway_proxy_overhead_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def overhead_buckets(metrics_url: str) -> list[tuple[float, float]]:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return [(float(le), float(count)) for le, count in _BUCKET.findall(text)]


def quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    """The q-quantile of what was observed between two reads of a cumulative histogram."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    previous_le, previous = 0.0, 0.0
    for le, count in counts:
        if count >= rank:
            if le == float("inf"):
                return previous_le
            return previous_le + (rank - previous) / max(count - previous, 1e-9) * (
                le - previous_le
            )
        previous_le, previous = le, count
    return previous_le


async def stage(url: str, rate: float, seconds: float) -> dict[str, Any]:
    workload = rate_workload(DATASET.stream(1), RateStage(rate, duration=seconds), 1)
    options = ClientOptions(model="m", stream=False, timeout=30.0)
    async with BenchClient(Target("envoy", url), options, time.monotonic()) as client:
        begin = client.now()
        records = await run_rate_stage(client, workload, 0, lambda r: None)
        span = client.now() - begin
    ok = [r for r in records if r.ok]
    latency = [r.end - r.start for r in ok]
    lag = [r.schedule_delay for r in records]
    return {
        "offered_rps": rate,
        "achieved_rps": len(ok) / span if span else 0.0,
        "failed": len(records) - len(ok),
        "e2e_p50_ms": float(np.percentile(latency, 50)) * 1000 if latency else None,
        "e2e_p99_ms": float(np.percentile(latency, 99)) * 1000 if latency else None,
        "client_lag_p99_ms": float(np.percentile(lag, 99)) * 1000,
    }


async def run(rates: list[float], seconds: float) -> dict[str, Any]:
    backend_ports = [free_port() for _ in range(3)]
    grpc_port, health_port, metrics_port = free_port(), free_port(), free_port()
    config = platform(
        backend_ports,
        listen=f"127.0.0.1:{grpc_port}",
        healthListen=f"127.0.0.1:{health_port}",
        metricsListen=f"127.0.0.1:{metrics_port}",
        failureMode="FailClose",
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        stack.enter_context(child(backend_main, backend_ports, port=backend_ports[0]))
        path = Path(tmp) / "platform.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(by_alias=True, mode="json")))
        stack.enter_context(
            process(
                [
                    sys.executable,
                    "-m",
                    "tokenway",
                    "epp",
                    "-c",
                    str(path),
                    "--log-level",
                    "warning",
                ],
                metrics_url,
            )
        )
        picker_port, plain_port = free_port(), free_port()
        envoys: list[EnvoyProcess] = [
            await _envoy(config, picker_port, (grpc_port, health_port)),
            await _envoy(config, plain_port, None),
        ]
        try:
            await asyncio.sleep(2)  # the picker's first scrapes, Envoy's health checks
            picker_url = f"http://127.0.0.1:{picker_port}"
            plain_url = f"http://127.0.0.1:{plain_port}"
            await stage(picker_url, 100, 1.0)  # warm connections on both paths
            await stage(plain_url, 100, 1.0)
            for rate in rates:
                before = overhead_buckets(metrics_url)
                picked = await stage(picker_url, rate, seconds)
                after = overhead_buckets(metrics_url)
                plain = await stage(plain_url, rate, seconds)
                row = {
                    "rate": rate,
                    "decision_p50_ms": quantile(before, after, 0.5) * 1000,
                    "decision_p99_ms": quantile(before, after, 0.99) * 1000,
                    "envoy_picker": picked,
                    "envoy_round_robin": plain,
                }
                if picked["e2e_p50_ms"] is not None and plain["e2e_p50_ms"] is not None:
                    row["added_e2e_p50_ms"] = picked["e2e_p50_ms"] - plain["e2e_p50_ms"]
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for envoy in envoys:
                await envoy.stop()
    return {
        "command": "python benchmarks/epp_decision_envoy.py "
        f"--rates {','.join(f'{r:g}' for r in rates)} --seconds {seconds:g}",
        "request": "chat, 64 prompt tokens, 4 output tokens, not streamed; FailClose",
        "note": "client, Envoy, picker and model server share one 2-core machine",
        "rates": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="250,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    report = asyncio.run(run(rates, args.seconds))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
