"""What exporting a span per request costs the gateway: throughput with traces on, sampled, off.

Same processes as gateway_throughput.py (the simulator's `instant` profile as backend, wrk as
the client, chat completions with 16 output tokens), three tokenway gateways in front of it: one
without tracing (the baseline), one exporting every request's span over OTLP/gRPC, and one
sampling 10 % of traces (`sampleRatio: 0.1`), both to a collector on 127.0.0.1 that receives and
counts spans (a child process, so its work is not the gateway's). Interleaved rounds, medians,
non-streaming and streaming at concurrency 32.

    python benchmarks/tracing_overhead.py [--seconds 8] [--rounds 3]

Writes benchmarks/results/tracing_overhead.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from gateway_throughput import (
    RESULTS,
    SERVED,
    WRK_SCRIPT,
    free_port,
    process,
    run_wrk,
    tokenway_config,
)

BODIES = {
    "json": {
        "model": "chat",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 16,
    },
    "stream": {
        "model": "chat",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 16,
        "stream": True,
    },
}


async def _collect(port: int, counter: Any) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

    class Receiver(otlp_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            counter.value += sum(
                len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
            )
            return otlp.ExportTraceServiceResponse()

    server = grpc.aio.server()
    otlp_grpc.add_TraceServiceServicer_to_server(Receiver(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def collector_main(port: int, counter: Any) -> None:
    asyncio.run(_collect(port, counter))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tokenway = [sys.executable, "-m", "tokenway"]
    backend, plain, traced, sampled, collector = (free_port() for _ in range(5))
    spans = multiprocessing.get_context("spawn").Value("q", 0)
    sink = multiprocessing.get_context("spawn").Process(
        target=collector_main, args=(collector, spans), daemon=True
    )
    sink.start()
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        kind: {"off": [], "on": [], "sampled": []} for kind in BODIES
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            script = folder / "bench.lua"
            script.write_text(WRK_SCRIPT)
            configs = {}
            for name, port, ratio in (
                ("off", plain, None),
                ("on", traced, 1.0),
                ("sampled", sampled, 0.1),
            ):
                (folder / name).mkdir()
                path = tokenway_config(folder / name, port, backend)
                if ratio is not None:
                    path.write_text(
                        path.read_text() + "observability: {otlp: {endpoint: "
                        f"'http://127.0.0.1:{collector}', sampleRatio: {ratio}}}}}\n"
                    )
                configs[name] = (port, path)
            with (
                process(
                    [
                        *tokenway,
                        "sim",
                        "--port",
                        str(backend),
                        "--profile",
                        "instant",
                        "--model",
                        SERVED,
                    ],
                    f"http://127.0.0.1:{backend}/health",
                ),
                process(
                    [*tokenway, "serve", "-c", str(configs["off"][1])],
                    f"http://127.0.0.1:{plain}/health",
                ),
                process(
                    [*tokenway, "serve", "-c", str(configs["on"][1])],
                    f"http://127.0.0.1:{traced}/health",
                ),
                process(
                    [*tokenway, "serve", "-c", str(configs["sampled"][1])],
                    f"http://127.0.0.1:{sampled}/health",
                ),
            ):
                urls = {
                    name: f"http://127.0.0.1:{port}/v1/chat/completions"
                    for name, (port, _) in configs.items()
                }
                for round_ in range(args.rounds):
                    for kind, body in BODIES.items():
                        for mode, url in urls.items():
                            cell = run_wrk(url, body, 32, args.seconds, script)
                            results[kind][mode].append(cell)
                            print(
                                f"round {round_} {kind:6s} tracing {mode:7s} "
                                f"{cell['rps']:7.0f} req/s  p50 {cell['p50'] * 1000:6.2f} ms",
                                flush=True,
                            )
    finally:
        sink.terminate()
        sink.join(10)
    report: dict[str, Any] = {
        "command": "python benchmarks/tracing_overhead.py "
        f"--seconds {args.seconds} --rounds {args.rounds}",
        "concurrency": 32,
        "spans_received": spans.value,
        "results": {},
    }
    for kind, modes in results.items():
        rps = {m: statistics.median(c["rps"] for c in cells) for m, cells in modes.items()}
        p50 = {m: statistics.median(c["p50"] * 1000 for c in cells) for m, cells in modes.items()}
        report["results"][kind] = {
            "rps": rps,
            "p50_ms": p50,
            "rps_ratio_vs_off": {m: rps[m] / rps["off"] for m in ("on", "sampled")},
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tracing_overhead.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
