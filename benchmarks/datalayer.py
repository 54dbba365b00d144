"""Datalayer costs: parsing /metrics pages, snapshots per request, and scraping a 64-endpoint fleet.

1. Parse: each engine's page (the test fixtures) with our reader, against prometheus_client's
   `text_string_to_metric_families` (the baseline) in the same run.
2. Snapshots: `EndpointRegistry.snapshots(pool)` per call for pools of 8 and 64 endpoints,
   against merely constructing the same `EndpointSnapshot` objects (the floor).
3. Scrape: 64 vLLM-like endpoints (served by a child process on 127.0.0.1) scraped every 50 ms
   for a few seconds: achieved scrapes per second against the 1,280/s asked for, and the CPU
   the scraping process used per scrape (on 2 cores the serving child is usually the limit).

    .venv/bin/python benchmarks/datalayer.py [--scrape-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tokenway.datalayer.endpoint import EndpointMetrics, EndpointSnapshot
from tokenway.datalayer.parsers import parser_for
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.datalayer.scraper import MetricsScraper
from tokenway.net.http_client import HttpClient

FIXTURES = Path(__file__).parent.parent / "tests" / "datalayer" / "fixtures"
RESULTS = Path(__file__).parent / "results" / "datalayer.json"
PAGES = {
    "vllm": "vllm.prom",
    "vllm (2 data-parallel engines)": "vllm_data_parallel.prom",
    "vllm (deprecated names)": "vllm_deprecated.prom",
    "sglang": "sglang.prom",
    "trtllm": "trtllm.prom",
    "llamacpp": "llamacpp.prom",
}
FLEET = 64
INTERVAL = 0.05


def per_call_us(call: Callable[[], object], budget_s: float = 1.0) -> float:
    """Median of five timed batches, in microseconds per call."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        if time.perf_counter() - start > budget_s / 20:
            break
        calls *= 2
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        batches.append((time.perf_counter() - start) / calls * 1e6)
    return sorted(batches)[2]


def bench_parse() -> dict[str, dict[str, float]]:
    results = {}
    for label, fixture in PAGES.items():
        text = (FIXTURES / fixture).read_text()
        parser = parser_for(label.split()[0])
        ours = per_call_us(lambda parser=parser, text=text: parser.parse(text))
        baseline = per_call_us(lambda text=text: list(text_string_to_metric_families(text)))
        results[label] = {
            "bytes": len(text),
            "ours_us": round(ours, 1),
            "prometheus_client_us": round(baseline, 1),
            "speedup": round(baseline / ours, 1),
        }
        print(f"parse {label:32} {ours:8.1f} us  vs prometheus_client {baseline:9.1f} us")
    return results


def bench_snapshots() -> dict[str, float]:
    results = {}
    for size in (8, 64):
        registry = EndpointRegistry(time.monotonic)
        urls = [f"http://10.0.{i // 250}.{i % 250}:8000" for i in range(size)]
        registry.set_pool("p", urls, "vllm")
        for url in urls:
            registry.update_metrics(url, EndpointMetrics(waiting=3, running=5, kv_usage=0.4))
        cost = per_call_us(lambda registry=registry: registry.snapshots("p"))
        metrics = EndpointMetrics(waiting=3, running=5, kv_usage=0.4, scraped_at=0.0)
        bare = per_call_us(
            lambda urls=urls, metrics=metrics: [
                EndpointSnapshot(url=url, pool="p", metrics=metrics, metrics_age=0.1)
                for url in urls
            ]
        )
        results[f"snapshots_{size}_endpoints_us"] = round(cost, 1)
        results[f"bare_construction_{size}_endpoints_us"] = round(bare, 1)
        print(
            f"snapshots({size} endpoints) {cost:8.1f} us per call; "
            f"constructing the same snapshots alone {bare:8.1f} us ({cost / bare:.2f}x)"
        )
    return results


def _serve_fleet(page: str, count: int, ports: multiprocessing.Queue[list[int]]) -> None:
    async def main() -> None:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/plain", charset="utf-8")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        bound = []
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            await web.SockSite(runner, sock).start()
            bound.append(sock.getsockname()[1])
        ports.put(bound)
        await asyncio.Event().wait()

    asyncio.run(main())


async def bench_scrape(seconds: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[list[int]] = context.Queue()
    page = (FIXTURES / "vllm.prom").read_text()
    fleet = context.Process(target=_serve_fleet, args=(page, FLEET, ports), daemon=True)
    fleet.start()
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports.get(timeout=60)]
        registry = EndpointRegistry(time.monotonic)
        registry.set_pool("fleet", urls, "vllm")
        scraped: dict[str, float] = {}
        session = HttpClient()
        try:
            scraper = MetricsScraper(registry, session, interval=INTERVAL)
            await scraper.scrape_once()
            counted = 0
            wall, cpu = time.perf_counter(), time.process_time()
            deadline = wall + seconds
            scraper.start()
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
                for snapshot in registry.snapshots("fleet"):
                    stamp = snapshot.metrics.scraped_at
                    if stamp is not None and scraped.get(snapshot.url) != stamp:
                        scraped[snapshot.url] = stamp
                        counted += 1
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            ages = [s.metrics_age or 0.0 for s in registry.snapshots("fleet")]
            ready = sum(s.healthy for s in registry.snapshots("fleet"))
            await scraper.stop()
        finally:
            await session.close()
    finally:
        fleet.terminate()
        fleet.join(10)
    wanted = FLEET / INTERVAL
    result = {
        "endpoints": FLEET,
        "interval_s": INTERVAL,
        "seconds": round(wall, 2),
        "scrapes_per_s": round(counted / wall, 1),
        "asked_per_s": wanted,
        "achieved_ratio": round(counted / wall / wanted, 3),
        "scraper_cpu_cores": round(cpu / wall, 3),
        "scraper_cpu_ms_per_scrape": round(cpu / counted * 1000, 3),
        "projected_cores_at_asked_rate": round(cpu / counted * wanted, 2),
        "max_metrics_age_s": round(max(ages), 3),
        "ready_endpoints": ready,
    }
    print(
        f"scrape {FLEET} endpoints every {INTERVAL * 1000:.0f} ms: "
        f"{result['scrapes_per_s']}/s of {wanted:.0f}/s asked, "
        f"{result['scraper_cpu_cores']} cores ({result['scraper_cpu_ms_per_scrape']} ms CPU per "
        f"scrape), max age {result['max_metrics_age_s']} s"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrape-seconds", type=float, default=5.0)
    args = parser.parse_args()
    results = {
        "parse": bench_parse(),
        "snapshots": bench_snapshots(),
        "scrape": asyncio.run(bench_scrape(args.scrape_seconds)),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
