"""Payload processor latency at 500, 2,000 and 8,000 prompt tokens, on CPU.

Each built-in processor runs alone in a chain, then the default chain (semantic routing before
routing; injection guard, PII redaction and limits before forwarding) runs on the same requests.
Prompts are English prose from the routing dataset with an email and a phone number every ~500
tokens, so redaction has work to do. The in-run baselines are what the gateway pays anyway:
`json.loads` of the request body and an empty chain. Streamed-answer redaction is measured per
token-sized delta (4 characters) over an 8,000-token answer.

Both the thread's CPU time and wall time are recorded per call; on a shared machine the wall
tail is mostly preemption by other processes, so the CPU-time p99 is the processor's own cost
and the one the goals are judged on (regex-class < 1 ms p99, semantic routing < 10 ms p99 at
2,000 tokens).

    .venv/bin/python benchmarks/processing_latency.py [--iterations 300]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import matplotlib
import yaml
from prometheus_client import CollectorRegistry

from tokenway.bench.stats import distribution
from tokenway.config.loader import parse_platform
from tokenway.gateway.context import InboundRequest, RequestContext
from tokenway.gateway.parse import parse_request
from tokenway.processing.chain import Chain
from tokenway.processing.factory import build_chain
from tokenway.processing.metrics import ProcessorMetrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "processing_latency.json"
PLOT = HERE / "results" / "processing_latency.png"
SIZES = (500, 2000, 8000)
CHARS_PER_TOKEN = 4

ROUTER = yaml.safe_load((HERE / "data" / "semantic_routes.yaml").read_text())["processors"][0]
PROCESSORS: dict[str, dict[str, Any]] = {
    "pii": {"name": "pii", "type": "pii", "phase": "request"},
    "injection": {"name": "injection", "type": "injection", "phase": "request"},
    "limits": {
        "name": "limits",
        "type": "limits",
        "phase": "request",
        "maxPromptTokens": 100_000,
        "maxMessages": 64,
        "forbiddenParams": ["logit_bias"],
        "maxTokens": {"default": 4096, "teams": {"search": 512}},
    },
    "cel": {
        "name": "cel",
        "type": "cel",
        "phase": "request",
        "rules": [
            {
                "name": "hot",
                "when": "has(body.temperature) && body.temperature > 1.5",
                "reject": {"message": "too hot"},
            },
            {"name": "long", "when": "size(body.messages) > 20", "model": "big"},
        ],
    },
    "semantic-router": ROUTER,
}
DEFAULT_CHAIN = ["semantic-router", "injection", "pii", "limits"]


def prompt(rng: random.Random, tokens: int, sentences: list[str]) -> str:
    parts: list[str] = []
    size = 0
    while size < tokens * CHARS_PER_TOKEN:
        if len(parts) % 40 == 39:
            n = len(parts)
            parts.append(f"Reach me at user{n}@example.com or +1 415 555 {1000 + n % 9000}.")
        else:
            parts.append(rng.choice(sentences))
        size += len(parts[-1]) + 1
    return " ".join(parts)[: tokens * CHARS_PER_TOKEN]


def context(body: bytes) -> RequestContext:
    inbound = InboundRequest("POST", "/v1/chat/completions", {}, body)
    return parse_request(inbound, 0.0, 64 * 2**20)


def chain(names: list[str]) -> Chain:
    # A generous timeout: the benchmark measures cost, it does not test the failure mode.
    specs = [{**PROCESSORS[n], "timeout": "1s"} for n in names]
    config = parse_platform(yaml.safe_dump({"processors": specs}))
    return build_chain(config, ProcessorMetrics(CollectorRegistry()))


def measure(call: Callable[[], None], iterations: int) -> dict[str, dict[str, float] | None]:
    cpu, wall = [], []
    gc.collect()
    for _ in range(iterations):
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        call()
        w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        cpu.append((c1 - c0) / 1e6)
        wall.append((w1 - w0) / 1e6)
    return {"cpu_ms": distribution(cpu), "wall_ms": distribution(wall)}


def drive(step: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never waits, without an event loop's per-call overhead."""
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("a processor chain step awaited something")


def run_chain(target: Chain, bodies: list[bytes]) -> Callable[[], None]:
    contexts = iter([context(b) for b in bodies])

    def call() -> None:
        ctx = next(contexts)
        drive(target.run("pre-routing", ctx))
        drive(target.run("request", ctx))

    return call


def stream_redaction(answer: str) -> dict[str, Any]:
    config = parse_platform(
        yaml.safe_dump({"processors": [{"name": "out", "type": "pii", "phase": "response"}]})
    )
    target = build_chain(config, ProcessorMetrics(CollectorRegistry()))
    deltas = [answer[i : i + CHARS_PER_TOKEN] for i in range(0, len(answer), CHARS_PER_TOKEN)]
    ctx = context(
        json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    )
    stream = target.response_filter(ctx)
    assert stream is not None
    feeds = iter(deltas)
    result = measure(lambda: stream.feed(next(feeds)), len(deltas))
    stream.finish()
    return {"deltas": len(deltas), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(7)
    rows = [json.loads(line) for line in (HERE / "data" / "semantic_routing_prompts.jsonl").open()]
    sentences = [row["prompt"] for row in rows]
    results: dict[str, Any] = {"iterations": args.iterations, "sizes": {}}
    subjects = {name: [name] for name in PROCESSORS} | {"default-chain": DEFAULT_CHAIN}
    for tokens in SIZES:
        text = prompt(rng, tokens, sentences)
        body = json.dumps(
            {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 9000}
        ).encode()
        count = args.iterations if tokens < 8000 else max(args.iterations // 3, 50)
        bodies = [body] * count
        row: dict[str, Any] = {
            "json-parse (baseline)": measure(lambda b=body: json.loads(b), count),
            "empty-chain (baseline)": measure(run_chain(chain([]), bodies), count),
        }
        for subject, names in subjects.items():
            row[subject] = measure(run_chain(chain(names), bodies), count)
        parse_p99 = row["json-parse (baseline)"]["cpu_ms"]["p99"]
        for values in row.values():
            values["p99_vs_json_parse"] = round(values["cpu_ms"]["p99"] / parse_p99, 2)
        results["sizes"][str(tokens)] = row
        print(f"{tokens} prompt tokens (cpu ms p50 / p99, ratio of p99 to json parse):")
        for subject, values in row.items():
            cpu = values["cpu_ms"]
            print(
                f"  {subject:24} {cpu['median']:8.3f} {cpu['p99']:8.3f}  "
                f"x{values['p99_vs_json_parse']}"
            )
    answer = prompt(rng, 8000, sentences)
    results["stream-redaction-8000"] = stream_redaction(answer)
    per_delta = results["stream-redaction-8000"]["cpu_ms"]
    print(
        f"stream redaction per 4-char delta: p50 {per_delta['median']:.4f} ms, "
        f"p99 {per_delta['p99']:.4f} ms"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    plot(results)
    print(f"wrote {RESULTS} and {PLOT}")


def plot(results: dict[str, Any]) -> None:
    subjects = list(results["sizes"][str(SIZES[0])])
    figure, axis = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(SIZES)
    for index, tokens in enumerate(SIZES):
        row = results["sizes"][str(tokens)]
        values = [row[s]["cpu_ms"]["p99"] for s in subjects]
        positions = [i + index * width for i in range(len(subjects))]
        axis.bar(positions, values, width, label=f"{tokens} tokens")
    axis.set_xticks([i + width for i in range(len(subjects))], subjects, rotation=25, ha="right")
    axis.set_yscale("log")
    axis.set_ylabel("p99 CPU time per request (ms, log)")
    axis.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    axis.axhline(10.0, color="grey", linestyle=":", linewidth=0.8)
    axis.set_title("Payload processor latency by prompt size")
    axis.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


if __name__ == "__main__":
    main()
