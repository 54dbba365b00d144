"""Added latency of identity + authorization + limits per request (p50/p99, microseconds).

Each scenario times authenticate + authorize + reserve + settle for one request at a time:
  open          no teams: the embedded default (baseline)
  memory        API key, allow-list, 4 limits + a money budget, in-memory store
  memory+jwt    the same with an RS256 OIDC token instead of an API key
  memory+rego   the same with a Rego policy after the allow-lists
  redis         the memory scenario with a Redis store on loopback (started here)
  redis: 2 PINGs  two PING round trips with redis.asyncio: the floor of any shared store
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import redis
import redis.asyncio as aioredis
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from tokenway.admission.limits.factory import build_limiter
from tokenway.auth.apikeys import generate_key, hash_key
from tokenway.auth.factory import build_authenticator, build_authorizer
from tokenway.config.loader import parse_platform
from tokenway.gateway.context import InboundRequest, RequestContext, Route, Usage

ITERATIONS = 3000
WARMUP = 300
OUT = Path(__file__).parent / "results" / "auth_overhead.json"
ISSUER = "https://sso.bench.test"
POLICY = """package tokenway.authz
default allow := false
allow if { input.principal.team == "search"; input.estimated_tokens.max_tokens <= 4096 }
"""


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


async def scenario(config_data: dict[str, Any], headers: dict[str, str]) -> list[float]:
    config = parse_platform(yaml.safe_dump(config_data))
    registry = CollectorRegistry()
    authenticator = build_authenticator(config, registry)
    authorizer = build_authorizer(config, registry)
    limiter = build_limiter(config, time.time, registry)
    await authenticator.start()
    samples = []
    try:
        for n in range(WARMUP + ITERATIONS):
            ctx = context(headers, n)
            start = time.perf_counter_ns()
            ctx.principal = authenticator.authenticate(ctx.inbound)
            authorizer.authorize(ctx)
            reservation = await limiter.reserve(ctx)
            reservation.headers()
            await reservation.settle(Usage(100, 200))
            elapsed = time.perf_counter_ns() - start
            if n >= WARMUP:
                samples.append(elapsed / 1000)
    finally:
        await authenticator.close()
        await limiter.close()
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99)], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def main() -> None:
    key = generate_key()
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory() as tmp:
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
        runs: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
            "open": ({}, {}),
            "memory": (base, bearer),
            "memory+jwt": (base, {"authorization": f"Bearer {token}"}),
            "memory+rego": (base | {"access": access | {"rego": str(policy)}}, bearer),
        }
        results = {name: summary(asyncio.run(scenario(*run))) for name, run in runs.items()}
        if shutil.which("redis-server"):
            with redis_server() as url:
                store = {"redis": url, "timeout": "1s"}
                results["redis: 2 PINGs"] = summary(asyncio.run(two_pings(url)))
                results["redis"] = summary(
                    asyncio.run(scenario(base | {"limitsStore": store}, bearer))
                )
    baseline = results["open"]["p50_us"]
    for row in results.values():
        row["p50_vs_open"] = round(row["p50_us"] / baseline, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "iterations": ITERATIONS,
        "python": sys.version.split()[0],
        "goal_p50_us": {"memory": 300, "redis": 1000},
        "scenarios": results,
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in results.items():
        print(
            f"{name:12s} p50 {row['p50_us']:8.1f} us  p99 {row['p99_us']:8.1f} us  "
            f"x{row['p50_vs_open']} of open"
        )
    print(f"wrote {OUT}")


async def two_pings(url: str) -> list[float]:
    """The floor for any shared store: one round trip to admit and one to settle."""
    client = aioredis.Redis.from_url(url)
    samples = []
    try:
        for n in range(WARMUP + ITERATIONS):
            start = time.perf_counter_ns()
            await client.ping()
            await client.ping()
            if n >= WARMUP:
                samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        await client.aclose()
    return samples


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
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
