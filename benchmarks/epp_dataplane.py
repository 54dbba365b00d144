"""End-to-end cost of the Envoy data plane with tokenway as Endpoint Picker.

Same instant model server behind every scenario (it answers at once, so all time measured is
the data plane's), each scenario a separate set of processes:
  direct              client -> model server (the baseline)
  envoy-round-robin   client -> Envoy (no picker) -> model server
  envoy-picker        client -> Envoy -> tokenway picker (ext_proc, BUFFERED, FailOpen)
  envoy-picker-fd     the same with FULL_DUPLEX_STREAMED request bodies (the reference mode)
  standalone          client -> tokenway gateway (aiohttp proxy) -> model server
Part 1: small non-streamed requests at concurrency 10: latency and overhead over direct.
Part 2: streamed requests with a 220 KB prompt at concurrency 20 and 150: time to first token,
and what each data plane adds over direct (the reference picker: +158 ms at concurrency 20).
Scenarios run interleaved in rounds so noise from other processes spreads over all of them.
Writes benchmarks/results/epp_dataplane.json. Run: .venv/bin/python benchmarks/epp_dataplane.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from epp_common import (
    backend_main,
    chat_body,
    child,
    closed_loop,
    free_port,
    picker_main,
    platform,
    standalone_main,
    summary,
)
from tokenway.gateway.extproc.bootstrap import PickerAddress, envoy_bootstrap
from tokenway.gateway.extproc.envoy import EnvoyProcess

OUT = Path(__file__).parent / "results" / "epp_dataplane.json"
ROUNDS = 3
SMALL = (10, 150)
"""(concurrency, requests per round) of part 1."""
LARGE = [(20, 60), (150, 150)]
"""(concurrency, requests per round) of part 2."""
PROMPT = 220 * 1024


async def _envoy(config: Any, port: int, picker: tuple[int, int] | None) -> EnvoyProcess:
    pickers = (
        [PickerAddress("127.0.0.1", *picker)] if picker else [PickerAddress("127.0.0.1", 1, 1)]
    )
    bootstrap = envoy_bootstrap(config, listen=("127.0.0.1", port), admin_port=0, pickers=pickers)
    if picker is None:
        manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        filters = manager["typed_config"]["http_filters"]
        manager["typed_config"]["http_filters"] = [
            f for f in filters if "ext_proc" not in f["name"]
        ]
    return await EnvoyProcess.start(bootstrap)


async def _measure(urls: dict[str, str]) -> dict[str, Any]:
    small_body = chat_body(64, stream=False)
    large_body = chat_body(PROMPT, stream=True)
    small: dict[str, list[float]] = {name: [] for name in urls}
    large: dict[int, dict[str, list[float]]] = {c: {name: [] for name in urls} for c, _ in LARGE}
    for url in urls.values():  # warm connections and caches
        await closed_loop(url, small_body, 50, 10, stream=False)
    for round_ in range(ROUNDS):
        for name, url in urls.items():
            concurrency, requests = SMALL
            small[name] += await closed_loop(url, small_body, requests, concurrency, stream=False)
            for concurrency, requests in LARGE:
                large[concurrency][name] += await closed_loop(
                    url, large_body, requests, concurrency, stream=True
                )
        print(f"round {round_ + 1}/{ROUNDS} done", flush=True)
    result: dict[str, Any] = {"small_c10": {}, "ttft_220kb": {}}
    base = summary(small["direct"])
    for name, values in small.items():
        stats = summary(values)
        stats["added_p50_ms"] = stats["p50_ms"] - base["p50_ms"]
        stats["ratio_p50_vs_direct"] = stats["p50_ms"] / base["p50_ms"]
        result["small_c10"][name] = stats
    for concurrency, per_scenario in large.items():
        base = summary(per_scenario["direct"])
        rows = {}
        for name, values in per_scenario.items():
            stats = summary(values)
            stats["added_ttft_p50_ms"] = stats["p50_ms"] - base["p50_ms"]
            stats["added_ttft_p99_ms"] = stats["p99_ms"] - base["p99_ms"]
            rows[name] = stats
        result["ttft_220kb"][f"c{concurrency}"] = rows
    return result


async def main() -> None:
    backend_ports = [free_port() for _ in range(3)]
    config = platform(backend_ports)
    fd_config = platform(
        backend_ports, failureMode="FailClose", requestBodyMode="FULL_DUPLEX_STREAMED"
    )
    picker, picker_fd = (free_port(), free_port()), (free_port(), free_port())
    standalone = free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(child(backend_main, backend_ports, port=backend_ports[0]))
        dump = config.model_dump(by_alias=True)
        stack.enter_context(child(picker_main, dump, *picker, port=picker[0]))
        fd_dump = fd_config.model_dump(by_alias=True)
        stack.enter_context(child(picker_main, fd_dump, *picker_fd, port=picker_fd[0]))
        stack.enter_context(child(standalone_main, dump, standalone, port=standalone))
        ports = {name: free_port() for name in ("rr", "picker", "fd")}
        envoys = [
            await _envoy(config, ports["rr"], None),
            await _envoy(config, ports["picker"], picker),
            await _envoy(fd_config, ports["fd"], picker_fd),
        ]
        try:
            await asyncio.sleep(2)  # the pickers' first scrapes and Envoy's health checks
            urls = {
                "direct": f"http://127.0.0.1:{backend_ports[0]}",
                "envoy-round-robin": f"http://127.0.0.1:{ports['rr']}",
                "envoy-picker": f"http://127.0.0.1:{ports['picker']}",
                "envoy-picker-fd": f"http://127.0.0.1:{ports['fd']}",
                "standalone": f"http://127.0.0.1:{standalone}",
            }
            result = await _measure(urls)
        finally:
            for envoy in envoys:
                await envoy.stop()
    result["setup"] = {
        "rounds": ROUNDS,
        "small": {"concurrency": SMALL[0], "requests": SMALL[1] * ROUNDS},
        "large": [{"concurrency": c, "requests": n * ROUNDS} for c, n in LARGE],
        "prompt_bytes": PROMPT,
        "note": "2-core machine shared with other work; compare scenarios, not absolutes",
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
