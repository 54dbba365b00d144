"""Virtual-time speed: simulated seconds per CPU second for 8 replicas at 50 req/s.

Workload (the issue's): Poisson arrivals at 50 req/s, 1,000-token prompts, 200-token outputs,
8 h100-8b replicas behind a round-robin scheduler, scraped every 50 ms. Baselines measured in
the same run: the same runner single-stepping every engine step (how a plain step-by-step
simulator would run), and a fixed pure-Python loop that shows how fast this machine's core is
today (the box is shared; compare ratios, not absolute numbers).

    .venv/bin/python benchmarks/sim_virtual_speed.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Sequence
from pathlib import Path

from tokenway.bench.workload import WorkloadRequest
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.request import Decision, SchedulingRequest
from tokenway.scheduling.scheduler import Outcome
from tokenway.sim.virtual import VirtualConfig, run_virtual

RESULTS = Path(__file__).parent / "results" / "sim_virtual_speed.json"
RATE = 50.0
PROMPT_TOKENS = 1000
OUTPUT_TOKENS = 200
REPLICAS = 8


class RoundRobin:
    def __init__(self) -> None:
        self.count = 0

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        explain: bool = False,
    ) -> Decision:
        k = self.count % len(endpoints)
        self.count += 1
        return Decision(tuple(endpoints[k:]) + tuple(endpoints[:k]))

    def observe(self, outcome: Outcome) -> None:
        return None


def workload(seconds: float, seed: int = 7) -> list[WorkloadRequest]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(3)) for _ in range(2000)]
    out: list[WorkloadRequest] = []
    t = rng.expovariate(RATE)
    while t < seconds:
        text = " ".join(rng.choices(words, k=PROMPT_TOKENS))[: PROMPT_TOKENS * 4]
        out.append(WorkloadRequest(arrival=t, prompt=text, max_tokens=OUTPUT_TOKENS))
        t += rng.expovariate(RATE)
    return out


def reference_loop_seconds() -> float:
    """CPU seconds of a fixed 2M-iteration loop: a gauge of this core's speed right now."""
    start = time.process_time()
    total = 0
    for i in range(2_000_000):
        total += i
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="simulated seconds")
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    args = parser.parse_args()
    config = VirtualConfig(replicas=REPLICAS, profile="h100-8b")
    loop_before = reference_loop_seconds()
    fast = run_virtual(workload(args.seconds), RoundRobin(), config)
    single = run_virtual(
        workload(args.baseline_seconds),
        RoundRobin(),
        VirtualConfig(replicas=REPLICAS, profile="h100-8b", max_steps_per_plan=1),
    )
    loop_after = reference_loop_seconds()
    summary = fast.summary()
    result = {
        "workload": {
            "replicas": REPLICAS,
            "rate_per_s": RATE,
            "prompt_tokens": PROMPT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "profile": "h100-8b",
            "simulated_seconds": fast.simulated_seconds,
            "requests": len(fast.requests),
        },
        "speedup_over_real_time": fast.speedup,
        "cpu_seconds": fast.cpu_seconds,
        "wall_seconds": fast.wall_seconds,
        "engine_steps": fast.steps,
        "engine_steps_per_cpu_second": fast.steps / fast.cpu_seconds,
        "baseline_single_stepping": {
            "simulated_seconds": single.simulated_seconds,
            "speedup_over_real_time": single.speedup,
            "engine_steps": single.steps,
        },
        "ratio_vs_single_stepping": fast.speedup / single.speedup,
        "reference_loop_cpu_seconds": [loop_before, loop_after],
        "latency": {
            k: v
            for k, v in summary.items()
            if k.split("_p")[0] in ("ttft", "itl", "e2e", "queue_time")
        },
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
