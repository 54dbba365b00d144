"""`tokenway envoy-config` accepted by real Envoy; `tokenway epp` serving health and metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.conftest import free_port
from typer.testing import CliRunner, Result

from tokenway.cli.main import app
from tokenway.gateway.extproc.envoy import envoy_binary
from tokenway.gateway.extproc.protocol import EXT_PROC_SERVICE

PLATFORM = """\
gateway:
  listen: 127.0.0.1:{listen}
pools:
  - name: pool
    endpoints: ["{endpoint}"]
models:
  - name: m
    pool: pool
picker:
  listen: 127.0.0.1:{grpc}
  healthListen: 127.0.0.1:{health}
  metricsListen: 127.0.0.1:{metrics}
  failureMode: FailClose
  requestBodyMode: FULL_DUPLEX_STREAMED
  envoyAdminPort: {admin}
"""


def write_platform(tmp_path: Path, endpoint: str = "http://127.0.0.1:8000") -> tuple[Path, dict]:
    ports = {name: free_port() for name in ("listen", "grpc", "health", "metrics", "admin")}
    path = tmp_path / "platform.yaml"
    path.write_text(PLATFORM.format(endpoint=endpoint, **ports))
    return path, ports


def tokenway(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_envoy_config_is_a_valid_bootstrap(tmp_path: Path) -> None:
    path, _ = write_platform(tmp_path)
    result = tokenway("envoy-config", "-c", str(path))
    assert result.exit_code == 0, result.output
    bootstrap = yaml.safe_load(result.stdout)
    filters = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    ext_proc = filters[0]["typed_config"]["http_filters"][0]["typed_config"]
    assert ext_proc["failure_mode_allow"] is False
    assert ext_proc["processing_mode"]["request_body_mode"] == "FULL_DUPLEX_STREAMED"
    written = tmp_path / "bootstrap.yaml"
    written.write_text(result.stdout)
    check = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(written), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_envoy_config_names_the_file_for_host_names(tmp_path: Path) -> None:
    path, _ = write_platform(tmp_path, endpoint="http://model-server.local:8000")
    result = tokenway("envoy-config", "-c", str(path))
    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert "IP address" in result.stderr


async def _health(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return response.status


async def test_epp_serves_health_and_metrics_until_sigterm(tmp_path: Path) -> None:
    path, ports = write_platform(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenway",
        "epp",
        "-c",
        str(path),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert process.stderr is not None
        banner = ""
        async with asyncio.timeout(30):
            while "tokenway picker:" not in banner:
                banner = (await process.stderr.readline()).decode()
        assert f":{ports['grpc']}" in banner
        serving = health_pb2.HealthCheckResponse.SERVING
        for port in (ports["grpc"], ports["health"]):
            for service in ("liveness", "readiness", EXT_PROC_SERVICE):
                assert await _health(port, service) == serving
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{ports['metrics']}/metrics") as response,
        ):
            assert response.status == 200
            assert "tokenway_requests" in await response.text()
        process.send_signal(signal.SIGTERM)
        # Draining: readiness goes down first while liveness stays up.
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        for _ in range(100):
            if await _health(ports["health"], "readiness") == not_serving:
                break
            await asyncio.sleep(0.02)
        assert await _health(ports["health"], "liveness") == serving
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
