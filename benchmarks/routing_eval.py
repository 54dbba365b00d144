"""Routing evaluation: the production scheduler and admission code in the simulator's virtual time.

Four workloads on 8 simulated replicas of the Llama-3.1-8B / H100 profile, each routed by the
four built-in profiles (round robin, least in flight, the reference weights, tokenway):

- shared-prefix: 150 tenants, each with a 6k-token shared context, 128-token questions;
- shared-prefix-pressure: the same with 700 tenants, more than the fleet's KV cache holds;
- multi-lora: 15 adapters in 60/30/10 traffic tiers, max_loras 3 per replica;
- sharegpt-like: mixed prompt and answer lengths (normal, clipped to 4..1024 tokens);
- bursty: ShareGPT-like traffic with a burst to about 3x capacity, priorities -1/0/1 and two
  tenants, through the admission code (saturation detector, shedding, flow control).

Reports p50/p90/p99 TTFT and ITL, output throughput, goodput against an SLO, shed and queued
counts; writes benchmarks/results/routing_eval.json and routing_eval.png, with ratios against
round robin and the reference profile measured in the same run.

    .venv/bin/python benchmarks/routing_eval.py [--scale 1.0] [--workloads shared-prefix,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from rich.progress import Progress

from tokenway.admission.dispatch import Dispatcher, Verdict
from tokenway.admission.factory import build_dispatcher
from tokenway.bench.datasets import (
    LengthDist,
    LoraMix,
    SharedPrefix,
    Synthetic,
    fixed,
    tiered_adapters,
)
from tokenway.bench.load import RateStage, rate_workload
from tokenway.bench.workload import WorkloadRequest
from tokenway.config.pools import PoolSpec
from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.factory import build_scheduler
from tokenway.scheduling.request import SchedulingRequest
from tokenway.sim.gateway_view import Admit
from tokenway.sim.virtual import RequestResult, VirtualConfig, run_virtual

RESULTS = Path(__file__).parent / "results"
PROFILES = ("round-robin", "least-in-flight", "default", "tokenway")
# Ablations of tokenway's additions, each a pool `scheduler:` setting and where it runs.
ABLATIONS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "default+prefill-cost": (
        {"profile": "default", "scorers": {"prefill-cost": 3}},
        ("shared-prefix", "shared-prefix-pressure", "sharegpt-like", "bursty"),
    ),
}
BEST = "tokenway"
REPLICAS = 8
SIM_PROFILE = "h100-8b"
SLO_TTFT = 1.0
SLO_ITL = 0.05
MIXED_IN = LengthDist(mean=300, std_dev=250, min=4, max=1024)
MIXED_OUT = LengthDist(mean=250, std_dev=250, min=4, max=1024)


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    requests: list[WorkloadRequest]
    config: VirtualConfig
    admission: bool = False


def _stages(stream: Any, stages: Sequence[RateStage], seed: int) -> list[WorkloadRequest]:
    out: list[WorkloadRequest] = []
    offset = 0.0
    for i, stage in enumerate(stages):
        out += rate_workload(stream, stage, seed + i, offset)
        offset += stage.duration or 0.0
    return out


def shared_prefix(scale: float, seed: int) -> Workload:
    data = SharedPrefix(
        num_groups=150,
        prompts_per_group=40,
        system_prompt_len=6000,
        question_len=fixed(128),
        output_len=fixed(128),
    )
    stage = RateStage(rate=45, count=max(300, int(4000 * scale)))
    requests = rate_workload(data.stream(seed), stage, seed)
    return Workload("shared-prefix", requests, VirtualConfig(REPLICAS, SIM_PROFILE))


def shared_prefix_pressure(scale: float, seed: int) -> Workload:
    """700 tenants: their 4.2M prefix tokens exceed the fleet's KV cache (8 x ~410k tokens)."""
    data = SharedPrefix(
        num_groups=700,
        prompts_per_group=20,
        system_prompt_len=6000,
        question_len=fixed(128),
        output_len=fixed(128),
    )
    stage = RateStage(rate=45, count=max(300, int(4000 * scale)))
    requests = rate_workload(data.stream(seed), stage, seed)
    return Workload("shared-prefix-pressure", requests, VirtualConfig(REPLICAS, SIM_PROFILE))


def multi_lora(scale: float, seed: int) -> Workload:
    adapters = tiered_adapters(15, (0.6, 0.3, 0.1))
    data = LoraMix(Synthetic(input_len=MIXED_IN, output_len=MIXED_OUT), adapters)
    stage = RateStage(rate=40, count=max(300, int(3000 * scale)))
    requests = rate_workload(data.stream(seed), stage, seed)
    config = VirtualConfig(
        REPLICAS, SIM_PROFILE, loras=tuple(a.name for a in adapters), max_loras=3
    )
    return Workload("multi-lora", requests, config)


def sharegpt_like(scale: float, seed: int) -> Workload:
    data = Synthetic(input_len=MIXED_IN, output_len=MIXED_OUT)
    stage = RateStage(rate=120, count=max(300, int(5000 * scale)))
    requests = rate_workload(data.stream(seed), stage, seed)
    return Workload("sharegpt-like", requests, VirtualConfig(REPLICAS, SIM_PROFILE))


def bursty(scale: float, seed: int) -> Workload:
    data = Synthetic(input_len=MIXED_IN, output_len=MIXED_OUT)
    calm = 15 * scale
    stages = [
        RateStage(rate=80, duration=calm),
        RateStage(rate=400, duration=10 * scale),
        RateStage(rate=80, duration=calm),
    ]
    rng = random.Random(seed)
    requests = [
        dataclasses.replace(
            request,
            priority=rng.choices((-1, 0, 1), (0.3, 0.5, 0.2))[0],
            tenant=rng.choices(("tenant-a", "tenant-b"), (0.8, 0.2))[0],
        )
        for request in _stages(data.stream(seed), stages, seed)
    ]
    return Workload("bursty", requests, VirtualConfig(REPLICAS, SIM_PROFILE), admission=True)


WORKLOADS: dict[str, Callable[[float, int], Workload]] = {
    "shared-prefix": shared_prefix,
    "shared-prefix-pressure": shared_prefix_pressure,
    "multi-lora": multi_lora,
    "sharegpt-like": sharegpt_like,
    "bursty": bursty,
}


class DispatcherHook:
    """The simulator's admission hook over the gateway's pure `Dispatcher`.

    A queued request asks again at every scrape interval; the queue is pumped whenever the
    newest scrape changed, and each request learns on its next ask whether it was dispatched
    or expired (the gateway would answer 503) or was refused (429) in the meantime.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.released: set[str] = set()
        self.expired: set[str] = set()
        self.refused: set[str] = set()
        self.queued = 0
        self.shed = 0
        self.timed_out = 0
        self._seen = -math.inf

    def __call__(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[EndpointSnapshot],
        now: float,
        held: float,
    ) -> Admit:
        key = request.request_id
        if held == 0:
            verdict = self.dispatcher.arrive(
                key, request.priority, request.fairness_id, endpoints, now
            )
            if verdict is Verdict.ADMIT:
                return Admit.ADMIT
            if verdict is not Verdict.QUEUED:
                self.shed += 1
                return Admit.SHED
            self.queued += 1
        newest = max((e.metrics.scraped_at or -math.inf) for e in endpoints)
        if newest != self._seen or held == 0:
            self._seen = newest
            result = self.dispatcher.pump(endpoints, now)
            self.released.update(item.key for item in result.dispatched)
            self.expired.update(item.key for item in result.expired)
            self.refused.update(item.key for item in (*result.shed, *result.evicted))
        if key in self.released:
            self.released.discard(key)
            return Admit.ADMIT
        if key in self.expired:
            self.expired.discard(key)
            self.timed_out += 1
            return Admit.SHED
        if key in self.refused:
            self.refused.discard(key)
            self.shed += 1
            return Admit.SHED
        return Admit.QUEUE


def _pct(values: list[float], q: float) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return float(np.percentile(clean, q)) if clean else None


def _metrics(results: list[RequestResult], seconds: float) -> dict[str, Any]:
    ok = [r for r in results if r.status == "ok"]
    ttft = [r.ttft for r in ok]
    itl = [r.itl for r in ok]
    good = [r for r in ok if r.ttft <= SLO_TTFT and (math.isnan(r.itl) or r.itl <= SLO_ITL)]
    prompt = sum(r.prompt_tokens for r in ok)
    return {
        "requests": len(results),
        "completed": len(ok),
        "shed": sum(r.status == "shed" for r in results),
        "queued_at_gateway": sum(r.gateway_wait > 0 for r in results),
        "ttft_s": {f"p{q}": _pct(ttft, q) for q in (50, 90, 99)},
        "itl_s": {f"p{q}": _pct(itl, q) for q in (50, 90, 99)},
        "output_tokens_per_s": sum(r.output_tokens for r in ok) / seconds if seconds else 0.0,
        "requests_per_s": len(ok) / seconds if seconds else 0.0,
        "goodput": {
            "slo": {"ttft": SLO_TTFT, "itl": SLO_ITL},
            "good_requests": len(good),
            "goodput_percentage": 100.0 * len(good) / len(results) if results else 0.0,
        },
        "prefix_hit_rate": sum(r.cached_tokens for r in ok) / prompt if prompt else 0.0,
    }


def _by_priority(
    workload: Workload, results: list[RequestResult]
) -> dict[str, dict[str, float | int | None]]:
    out: dict[str, dict[str, float | int | None]] = {}
    for priority in sorted({w.priority for w in workload.requests}):
        mine = [r for r in results if workload.requests[r.index].priority == priority]
        ok = [r for r in mine if r.status == "ok"]
        out[str(priority)] = {
            "requests": len(mine),
            "shed": sum(r.status == "shed" for r in mine),
            "ttft_p90_s": _pct([r.ttft for r in ok], 90),
        }
    return out


def run_one(workload: Workload, scheduler_spec: dict[str, Any], seed: int) -> dict[str, Any]:
    pool = PoolSpec.model_validate(
        {
            "name": workload.config.pool,
            "scheduler": scheduler_spec,
            "flowControl": {"queueTtl": "10s", "maxQueuedPerBand": 2000},
        }
    )
    scheduler = build_scheduler(pool, random.Random(seed))
    hook = DispatcherHook(build_dispatcher(pool)) if workload.admission else None
    result = run_virtual(workload.requests, scheduler, workload.config, hook)
    metrics = _metrics(result.requests, result.simulated_seconds)
    metrics["simulated_seconds"] = result.simulated_seconds
    metrics["wall_seconds"] = result.wall_seconds
    if hook is not None:
        metrics["queued_at_gateway"] = hook.queued
        metrics["shed_at_arrival"] = hook.shed
        metrics["queue_ttl_expired"] = hook.timed_out
        metrics["by_priority"] = _by_priority(workload, result.requests)
    return metrics


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    best = results[BEST]
    p90 = {name: r["ttft_s"]["p90"] for name, r in results.items()}
    out = {
        "p90_ttft_best_vs_round_robin": _ratio(p90[BEST], p90["round-robin"]),
        "p90_ttft_best_vs_default": _ratio(p90[BEST], p90["default"]),
        "output_throughput_best_vs_round_robin": _ratio(
            best["output_tokens_per_s"], results["round-robin"]["output_tokens_per_s"]
        ),
        "output_throughput_best_vs_default": _ratio(
            best["output_tokens_per_s"], results["default"]["output_tokens_per_s"]
        ),
    }
    return out


GOALS = {
    "shared-prefix": {"p90_ttft_best_vs_round_robin": 0.2, "p90_ttft_best_vs_default": 0.7},
    "multi-lora": {"p90_ttft_best_vs_round_robin": 0.5},
}


def _plot(report: dict[str, Any], path: Path) -> None:
    names = list(report["workloads"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        results = report["workloads"][name]["profiles"]
        p50 = [results[p]["ttft_s"]["p50"] or 0 for p in PROFILES]
        p90 = [results[p]["ttft_s"]["p90"] or 0 for p in PROFILES]
        x = np.arange(len(PROFILES))
        ax.bar(x - 0.2, p50, 0.4, label="p50")
        ax.bar(x + 0.2, p90, 0.4, label="p90")
        ax.set_yscale("log")
        ax.set_xticks(x, PROFILES, rotation=30, ha="right")
        ax.set_title(name)
        ax.set_ylabel("TTFT (s, virtual time)")
        ax.legend()
    fig.suptitle(f"TTFT by scheduling profile, {REPLICAS} x {SIM_PROFILE} (simulated)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies request counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    report: dict[str, Any] = {
        "replicas": REPLICAS,
        "sim_profile": SIM_PROFILE,
        "seed": args.seed,
        "scale": args.scale,
        "workloads": {},
    }
    runs = {
        name: [
            *((profile, {"profile": profile}) for profile in PROFILES),
            *((ablation, spec) for ablation, (spec, where) in ABLATIONS.items() if name in where),
        ]
        for name in chosen
    }
    with Progress() as progress:
        task = progress.add_task("simulating", total=sum(len(r) for r in runs.values()))
        for name in chosen:
            workload = WORKLOADS[name](args.scale, args.seed)
            results = {}
            for label, spec in runs[name]:
                progress.update(task, description=f"{name}: {label}")
                results[label] = run_one(workload, spec, args.seed)
                progress.advance(task)
            ratios = _ratios(results)
            goals = {
                key: {
                    "limit": limit,
                    "value": ratios[key],
                    "met": (ratios[key] or math.inf) <= limit,
                }
                for key, limit in GOALS.get(name, {}).items()
            }
            report["workloads"][name] = {
                "requests": len(workload.requests),
                "profiles": results,
                "ratios": ratios,
                "goals": goals,
            }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "routing_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, RESULTS / "routing_eval.png")
    _print(report)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print(report: dict[str, Any]) -> None:
    header = f"{'workload':<24}{'profile':<22}{'ttft p50':>9}{'p90':>8}{'p99':>8}{'itl p90':>8}"
    print(header + f"{'out tok/s':>10}{'good %':>8}{'shed':>6}{'queued':>7}")
    for name, entry in report["workloads"].items():
        for profile, r in entry["profiles"].items():
            print(
                f"{name:<24}{profile:<22}{_fmt(r['ttft_s']['p50']):>9}"
                f"{_fmt(r['ttft_s']['p90']):>8}{_fmt(r['ttft_s']['p99']):>8}"
                f"{_fmt(r['itl_s']['p90']):>8}{r['output_tokens_per_s']:>10.0f}"
                f"{r['goodput']['goodput_percentage']:>8.1f}{r['shed']:>6}"
                f"{r['queued_at_gateway']:>7}"
            )
        for key, goal in entry["goals"].items():
            state = "met" if goal["met"] else "NOT met"
            print(f"  {key} = {_fmt(goal['value'], 2)} (goal <= {goal['limit']}): {state}")
    print(f"wrote {RESULTS / 'routing_eval.json'} and {RESULTS / 'routing_eval.png'}")


if __name__ == "__main__":
    main()
