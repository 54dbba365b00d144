"""Added latency of identity + authorization + limits per request (p50/p99, microseconds).

Each scenario times authenticate + authorize + reserve + settle of one request at a time:
  open            no teams: the embedded default (the baseline)
  memory          API key, allow-list, 4 limits + a money budget, in-memory store
  memory+jwt      the same with an RS256 OIDC token instead of an API key
  memory+rego     the same with a Rego policy after the allow-lists
  redis           the memory scenario with a Redis store on loopback (started here)
  redis: 2 PINGs  two PING round trips with redis.asyncio: the floor of any shared store
Scenarios run interleaved in rounds so that noise from other processes spreads over all of them.
`cpu_us` is this process's CPU time per request and `redis_server_us` Redis's own script time per
request: neither is inflated by waiting for a busy CPU.
Writes benchmarks/results/auth_overhead.json. Run: .venv/bin/python benchmarks/auth_overhead.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import redis
import redis.asyncio as aioredis
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from tokenway.admission.limits.factory import build_limiter
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.auth.factory import build_authenticator, build_authorizer
from tokenway.auth.metrics import AuthenticationMetrics, AuthorizationMetrics
from tokenway.config.loader import parse_platform
from tokenway.gateway.context import InboundRequest, RequestContext, Route, Usage

ROUNDS = 6
PER_ROUND = 500
WARMUP = 200
OUT = Path(__file__).parent / "results" / "auth_overhead.json"
ISSUER = "https://sso.bench.test"
POLICY = """package tokenway.authz
default allow := false
allow if { input.principal.team == "search"; input.estimated_tokens.max_tokens <= 4096 }
"""

Step = Callable[[int], Awaitable[None]]


def team(key: str) -> dict[str, Any]:
    return {
        "name": "search",
        "identities": {
            "apiKeys": [{"sha256": hash_key(key), "label": "bench"}],
            "jwt": {"issuer": ISSUER, "value": "search"},
        },
        "models": ["chat", "support-*"],
        "limits": [
            {"tokens": 10**12, "per": "minute", "cost": "input_tokens + 2 * output_tokens"},
            {"tokens": 10**12, "per": "day"},
            {"requests": 10**12, "per": "minute"},
            {"concurrent": 10**6},
        ],
        "budget": {"amount": 10**6, "currency": "USD", "per": "month"},
    }


def context(headers: dict[str, str], n: int) -> RequestContext:
    return RequestContext(
        request_id=f"r{n}",
        operation="chat",
        inbound=InboundRequest("POST", "/v1/chat/completions", headers, b"", "127.0.0.1:1"),
        body={},
        received_at=0.0,
        model="chat",
        max_tokens=256,
        prompt_tokens_estimate=100,
        route=Route("chat", "pool", "chat", None, 0),
    )


@contextlib.asynccontextmanager
async def stages_step(config_data: dict[str, Any], headers: dict[str, str]) -> Any:
    config = parse_platform(yaml.safe_dump(config_data))
    registry = CollectorRegistry()
    authenticator = build_authenticator(config, AuthenticationMetrics(registry))
    authorizer = build_authorizer(config, AuthorizationMetrics(registry))
    limiter = build_limiter(config, time.time, UsageMetrics(registry))
    await authenticator.start()
    contexts = [context(headers, n) for n in range(PER_ROUND)]

    async def step(n: int) -> None:
        ctx = contexts[n]
        ctx.principal = authenticator.authenticate(ctx.inbound)
        authorizer.authorize(ctx)
        reservation = await limiter.reserve(ctx)
        reservation.headers()
        await reservation.settle(Usage(100, 200))

    try:
        yield step
    finally:
        await authenticator.close()
        await limiter.close()


@contextlib.asynccontextmanager
async def pings_step(url: str) -> Any:
    client = aioredis.Redis.from_url(url)

    async def step(n: int) -> None:
        await client.ping()
        await client.ping()

    try:
        yield step
    finally:
        await client.aclose()


async def measure(steps: dict[str, Step]) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, float] = dict.fromkeys(steps, 0.0)
    for step in steps.values():
        for n in range(WARMUP):
            await step(n % PER_ROUND)
    for _ in range(ROUNDS):
        for name, step in steps.items():
            cpu_start = time.process_time()
            for n in range(PER_ROUND):
                start = time.perf_counter_ns()
                await step(n)
                samples[name].append((time.perf_counter_ns() - start) / 1000)
            cpu[name] += time.process_time() - cpu_start
    results = {}
    for name, values in samples.items():
        ordered = sorted(values)
        results[name] = {
            "p50_us": round(statistics.median(ordered), 1),
            "p99_us": round(ordered[int(len(ordered) * 0.99)], 1),
            "cpu_us": round(cpu[name] / len(ordered) * 1e6, 1),
        }
    return results


async def run(configs: dict[str, tuple[dict[str, Any], dict[str, str]]], url: str | None) -> Any:
    async with contextlib.AsyncExitStack() as stack:
        steps = {
            name: await stack.enter_async_context(stages_step(*c)) for name, c in configs.items()
        }
        if url is not None:
            steps["redis: 2 PINGs"] = await stack.enter_async_context(pings_step(url))
        return await measure(steps)


def main() -> None:
    key = generate_key()
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory() as tmp, redis_server() as url:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing.public_key())) | {"kid": "k"}
        jwks = Path(tmp, "jwks.json")
        jwks.write_text(json.dumps({"keys": [jwk]}))
        policy = Path(tmp, "p.rego")
        policy.write_text(POLICY)
        claims = {"iss": ISSUER, "aud": "tokenway", "sub": "u", "groups": ["search"]}
        token = jwt.encode(
            claims | {"exp": int(time.time()) + 3600}, signing, "RS256", headers={"kid": "k"}
        )
        access = {"jwt": [{"issuer": ISSUER, "audience": "tokenway", "jwks": {"file": str(jwks)}}]}
        base = {"teams": [team(key)], "access": access}
        bearer = {"authorization": f"Bearer {key}"}
        configs = {
            "open": ({}, {}),
            "memory": (base, bearer),
            "memory+jwt": (base, {"authorization": f"Bearer {token}"}),
            "memory+rego": (base | {"access": access | {"rego": str(policy)}}, bearer),
        }
        if url is not None:
            configs["redis"] = (base | {"limitsStore": {"redis": url, "timeout": "1s"}}, bearer)
        results = asyncio.run(run(configs, url))
        if url is not None:
            with redis.Redis.from_url(url) as client:
                stats = client.info("commandstats")["cmdstat_evalsha"]
            requests = ROUNDS * PER_ROUND + WARMUP
            # Server-side script time per request (reserve + settle), which waiting for a busy
            # CPU on the client side does not inflate.
            results["redis"]["redis_server_us"] = round(stats["usec"] / requests, 1)
    baseline = results["open"]["p50_us"]
    for row in results.values():
        row["p50_vs_open"] = round(row["p50_us"] / baseline, 1)
    if "redis" in results:
        floor = results["redis: 2 PINGs"]["p50_us"]
        results["redis"]["p50_vs_2_pings"] = round(results["redis"]["p50_us"] / floor, 2)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "requests_per_scenario": ROUNDS * PER_ROUND,
        "python": sys.version.split()[0],
        "goal_p50_us": {"memory": 300, "redis": 1000},
        "scenarios": results,
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in results.items():
        print(
            f"{name:15s} p50 {row['p50_us']:8.1f} us  p99 {row['p99_us']:8.1f} us  "
            f"cpu {row['cpu_us']:7.1f} us  x{row['p50_vs_open']} of open"
        )
    if "redis" in results:
        print(f"redis server time per request: {results['redis']['redis_server_us']} us")
    print(f"wrote {OUT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
