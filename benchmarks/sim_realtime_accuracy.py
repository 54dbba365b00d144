"""Real-time accuracy: step-timing error of 4 replicas x 64 concurrent streams in one process,
and the request rate of the zero-time `instant` profile.

The fleet runs in this process (as `tokenway up` embeds it); the load comes from a separate
client process so client work does not share this event loop. Step-timing error is how late
each engine step's results are released relative to the step's modelled end, as a fraction of
the modelled step duration. Baselines measured in the same run: the same fleet with one
stream per replica (the error the event loop adds without load), and for the instant profile
a bare aiohttp handler returning a fixed completion (the HTTP stack's own ceiling).

    .venv/bin/python benchmarks/sim_realtime_accuracy.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from tokenway.sim.fleet import Fleet, start_fleet

RESULTS = Path(__file__).parent / "results" / "sim_realtime_accuracy.json"


async def _client(urls: list[str], streams: int, seconds: float, stream: bool, tokens: int) -> None:
    """Keep `streams` requests in flight per URL for `seconds`; print completed and elapsed."""
    started = time.monotonic()
    deadline = started + seconds
    done = 0
    body = {"prompt": "Tell me a story about the sea. " * 8, "max_tokens": tokens, "stream": stream}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(url: str) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with http.post(f"{url}/v1/completions", json=body) as response:
                    async for _ in response.content.iter_any():
                        pass
                    done += response.status == 200

        await asyncio.gather(*(worker(u) for u in urls for _ in range(streams)))
    print(done, time.monotonic() - started)


async def _run_client(
    urls: list[str], streams: int, seconds: float, stream: bool, tokens: int
) -> tuple[int, float]:
    """Run the load in a child process; returns (completed requests, seconds it took)."""
    spec = json.dumps([urls, streams, seconds, stream, tokens])
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", spec, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    done, elapsed = out.split()
    return int(done), float(elapsed)


async def _measure_timing(streams: int, seconds: float) -> dict[str, float]:
    fleet: Fleet = await start_fleet(4, profile="h100-8b", loras=())
    try:
        cpu, wall = time.process_time(), time.monotonic()
        completed, _ = await _run_client(fleet.urls, streams, seconds, True, 200)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        timings = [t for s in fleet.servers for t in s.realtime.timings]
    finally:
        await fleet.stop()
    planned = np.array([p for p, _ in timings])
    late = np.array([max(0.0, lateness) for _, lateness in timings])
    error = late / planned
    return {
        "streams_per_replica": streams,
        "steps": int(planned.size),
        "completed_requests": completed,
        "step_ms_p50": float(np.percentile(planned, 50) * 1e3),
        "error_p50": float(np.percentile(error, 50)),
        "error_p99": float(np.percentile(error, 99)),
        "late_ms_p99": float(np.percentile(late, 99) * 1e3),
        "server_cpu_fraction_of_one_core": cpu / wall,
    }


async def _requests_per_second(urls: list[str], seconds: float) -> float:
    completed, elapsed = await _run_client(urls, 32, seconds, False, 16)
    return completed / elapsed


async def _instant(seconds: float) -> dict[str, float]:
    fleet = await start_fleet(1, profile="instant", loras=())
    try:
        sim_rps = await _requests_per_second(fleet.urls, seconds)
    finally:
        await fleet.stop()
    answer = json.dumps(
        {
            "id": "cmpl-0",
            "object": "text_completion",
            "choices": [{"index": 0, "text": "x" * 64, "finish_reason": "length"}],
        }
    ).encode()

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        bare_rps = await _requests_per_second([f"http://127.0.0.1:{port}"], seconds)
    finally:
        await runner.cleanup()
    return {
        "sim_instant_rps": sim_rps,
        "bare_aiohttp_rps": bare_rps,
        "ratio_vs_bare": sim_rps / bare_rps,
    }


async def _timing(seconds: float) -> dict[str, object]:
    loaded = await _measure_timing(64, seconds)
    idle = await _measure_timing(1, seconds / 3)
    return {
        "loaded_4x64": loaded,
        "baseline_4x1": idle,
        "error_p99_ratio_vs_baseline": loaded["error_p99"] / max(idle["error_p99"], 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        urls, streams, seconds, stream, tokens = json.loads(args.client)
        asyncio.run(_client(urls, streams, seconds, stream, tokens))
        return
    # Timed profiles run on asyncio's own loop (sub-millisecond timers); the zero-time profile
    # on uvloop when installed, as `tokenway sim` does.
    result = asyncio.run(_timing(args.seconds))
    try:
        import uvloop

        result["instant_profile"] = uvloop.run(_instant(args.seconds / 3))
    except ImportError:
        result["instant_profile"] = asyncio.run(_instant(args.seconds / 3))
    result["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
