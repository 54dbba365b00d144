"""How fast one `tokenway bench` process can drive a streaming target before its own clock slips.

Two instant backends on 127.0.0.1, each measured in the same run:

- sim: a child process serving the simulator's `instant` profile (no model time; Python, so it
  competes with the client for this machine's cores);
- static: Envoy (one worker thread) answering every request with the bytes of one streamed
  answer the simulator gave for the same request, from memory: the cheapest server there is,
  so what is measured is the client.

Against each, this process offers constant-rate stages of growing rate, streaming small chat
requests, twice per rate, interleaved:

- tokenway: the real bench client and rate-stage scheduler (`BenchClient`, `run_rate_stage`)
  with full measurement (SSE parse, token times, usage, records);
- baseline: a bare aiohttp loop on the same event loop type that posts the same bodies at the
  same times and only drains each stream (no parsing, no records): what the common Python HTTP
  client costs before any measuring.

A rate is sustained when the p99 scheduling lag (actual send - intended send) stays under 5 ms,
every request succeeds and the answers keep pace (answered/offered >= 0.95). Reported: the
largest sustained rate of each client and their ratio, and the client CPU time per request
(median over the stages) with the rate it implies for one free core. On a shared 2-core machine
the simulator child competes for the same cores, so its sustained rates are a floor for the
client; the CPU per request is the number that carries over to other machines.

    .venv/bin/python benchmarks/bench_client_capacity.py [--rates 500,1000,...] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import uvloop

from epp_common import free_port
from tokenway.bench.client import BenchClient, ClientOptions, Target, request_body
from tokenway.bench.datasets import Synthetic, fixed
from tokenway.bench.load import RateStage, rate_workload
from tokenway.bench.record import RequestRecord
from tokenway.bench.runner import run_rate_stage
from tokenway.bench.workload import WorkloadRequest
from tokenway.gateway.extproc.envoy import EnvoyProcess
from tokenway.sim.fleet import start_fleet

RESULTS = Path(__file__).parent / "results" / "bench_client_capacity.json"
LAG_LIMIT = 0.005
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DATASET = Synthetic(input_len=fixed(32), output_len=fixed(8))


def _serve(urls: multiprocessing.Queue[str]) -> None:
    async def main() -> None:
        fleet = await start_fleet(1, profile="instant")
        urls.put(fleet.urls[0])
        await asyncio.Event().wait()

    uvloop.run(main())


async def recorded_answer(url: str) -> bytes:
    """One streamed answer of the simulator to the benchmark's request, as raw bytes."""
    request = next(iter(rate_workload(DATASET.stream(1), RateStage(1.0, duration=1.0), 1)))
    body = request_body(request, ClientOptions(model=MODEL), MODEL)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/chat/completions", json=body) as response,
    ):
        if response.status != 200 or "text/event-stream" not in response.content_type:
            raise RuntimeError(f"the simulator answered {response.status}")
        return await response.read()


def static_bootstrap(port: int, answer: bytes) -> dict[str, Any]:
    """Envoy serving `answer` as an event stream for every request on 127.0.0.1:port."""
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": answer.decode()}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "text/event-stream"}}
        ],
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "static",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    listener = {
        "name": "static",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [listener]},
    }


def summarise(
    rate: float, seconds: float, lags: list[float], ok: int, total: int, span: float, cpu: float
) -> dict[str, Any]:
    return {
        "rate": rate,
        "offered": total / seconds,
        "answered_per_s": ok / span if span > 0 else 0.0,
        "lag_p50_ms": float(np.percentile(lags, 50)) * 1000,
        "lag_p99_ms": float(np.percentile(lags, 99)) * 1000,
        "failures": total - ok,
        "client_cpu_share": cpu / span if span > 0 else 0.0,
        "client_cpu_us_per_request": cpu / total * 1e6 if total else 0.0,
        "sustained": bool(
            np.percentile(lags, 99) < LAG_LIMIT
            and ok == total
            and ok / span >= 0.95 * total / seconds
        ),
    }


async def tokenway_stage(url: str, rate: float, seconds: float) -> dict[str, Any]:
    stage = RateStage(rate, duration=seconds, process="constant")
    workload = rate_workload(DATASET.stream(1), stage, 1)
    options = ClientOptions(model=MODEL)
    async with BenchClient(Target("sim", url), options, time.monotonic()) as client:
        cpu, begin = time.process_time(), client.now()
        records: list[RequestRecord] = await run_rate_stage(client, workload, 0, lambda r: None)
        span, cpu = client.now() - begin, time.process_time() - cpu
    ok = sum(r.ok for r in records)
    lags = [r.schedule_delay for r in records]
    return summarise(rate, seconds, lags, ok, len(records), span, cpu)


async def baseline_stage(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """The same sends (same JSON bodies, encoded at send time) and a drain of each stream."""
    stage = RateStage(rate, duration=seconds, process="constant")
    workload = rate_workload(DATASET.stream(1), stage, 1)
    options = ClientOptions(model=MODEL)
    connector = aiohttp.TCPConnector(limit=4096)
    lags: list[float] = []
    ok = 0
    async with aiohttp.ClientSession(
        connector=connector, headers={"Content-Type": "application/json"}
    ) as session:

        async def one(request: WorkloadRequest, due: float) -> None:
            nonlocal ok
            lags.append(time.monotonic() - due)
            body = json.dumps(request_body(request, options, MODEL)).encode()
            async with session.post(f"{url}/v1/chat/completions", data=body) as response:
                async for _ in response.content.iter_any():
                    pass
                ok += response.status == 200

        loop = asyncio.get_running_loop()
        cpu, begin = time.process_time(), time.monotonic()
        tasks = []
        for request in workload:
            due = begin + request.arrival
            while (delay := due - time.monotonic()) > 0:  # noqa: ASYNC110 - as run_rate_stage
                await asyncio.sleep(delay)
            tasks.append(loop.create_task(one(request, due)))
        await asyncio.gather(*tasks, return_exceptions=True)
        span, cpu = time.monotonic() - begin, time.process_time() - cpu
    return summarise(rate, seconds, lags, ok, len(workload), span, cpu)


async def measure(url: str, rates: list[float], seconds: float) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"tokenway": [], "baseline": []}
    await tokenway_stage(url, 200, 1.0)  # warm the server and both code paths
    for index, rate in enumerate(rates):
        order = ["tokenway", "baseline"] if index % 2 == 0 else ["baseline", "tokenway"]
        behind = [r[-1]["answered_per_s"] < 0.9 * r[-1]["offered"] for r in results.values() if r]
        if behind and all(behind):
            break  # answers fell behind for both: higher rates only queue up longer
        for name in order:
            stage = tokenway_stage if name == "tokenway" else baseline_stage
            result = await stage(url, rate, seconds)
            results[name].append(result)
            print(
                f"{name:9s} {rate:6.0f}/s lag p99 {result['lag_p99_ms']:6.2f} ms "
                f"answered {result['answered_per_s']:7.0f}/s fail {result['failures']:4d} "
                f"cpu {result['client_cpu_us_per_request']:4.0f} us/req "
                f"{'ok' if result['sustained'] else '--'}",
                flush=True,
            )
    return results


def best(rows: list[dict[str, Any]]) -> float:
    sustained = [row["rate"] for row in rows if row["sustained"]]
    return max(sustained, default=0.0)


def backend_summary(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    tokenway, baseline = best(results["tokenway"]), best(results["baseline"])
    cpu = {
        name: float(np.median([row["client_cpu_us_per_request"] for row in rows]))
        for name, rows in results.items()
    }
    return {
        "max_sustained_rate": {"tokenway": tokenway, "baseline": baseline},
        "ratio_tokenway_to_baseline": tokenway / baseline if baseline else None,
        "client_cpu_us_per_request": cpu,
        "cpu_ratio_tokenway_to_baseline": cpu["tokenway"] / cpu["baseline"],
        "implied_rate_per_free_core": {name: 1e6 / us for name, us in cpu.items()},
        "stages": results,
    }


async def measure_backends(
    sim_url: str, rates: list[float], seconds: float
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    answer = await recorded_answer(sim_url)
    port = free_port()
    envoy = await EnvoyProcess.start(static_bootstrap(port, answer), concurrency=1)
    try:
        print("backend: static (Envoy direct response)", flush=True)
        static = await measure(f"http://127.0.0.1:{port}", rates, seconds)
    finally:
        await envoy.stop()
    print("backend: sim (instant profile)", flush=True)
    return {"static": static, "sim": await measure(sim_url, rates, seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="100,200,400,700,1000,1500,2000,2500,3000")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = context.Queue()
    server = context.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    try:
        url = queue.get(timeout=60)
        results = uvloop.run(measure_backends(url, rates, args.seconds))
    finally:
        server.terminate()
        server.join(10)
    summary = {
        "machine_cores": os.cpu_count(),
        "lag_limit_ms": LAG_LIMIT * 1000,
        "stage_seconds": args.seconds,
        "request": "chat, 32 prompt tokens, 8 streamed output tokens, include_usage",
        "backends": {name: backend_summary(rows) for name, rows in results.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    for name, backend in summary["backends"].items():
        for key in ("max_sustained_rate", "client_cpu_us_per_request"):
            print(name, key, json.dumps(backend[key]))


if __name__ == "__main__":
    main()
