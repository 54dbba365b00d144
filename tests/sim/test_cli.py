"""`tokenway sim` as a user runs it: a real process, stopped by a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

import aiohttp
from typer.testing import CliRunner

from tokenway.cli.main import app


def _two_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            base = a.getsockname()[1]
            with socket.socket() as b, contextlib.suppress(OSError):
                b.bind(("127.0.0.1", base + 1))
                return int(base)
    raise RuntimeError("no two consecutive free ports")


async def test_fleet_serves_on_consecutive_ports_and_stops_on_sigterm() -> None:
    base = _two_free_ports()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenway",
        "sim",
        "fleet",
        "--replicas",
        "2",
        "--base-port",
        str(base),
        "--profile",
        "instant",
        "--lora",
        "a,b",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for port in (base, base + 1):
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/health") as health:
                            if health.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                body = {"model": "b", "prompt": "hi", "max_tokens": 3}
                url = f"http://127.0.0.1:{port}/v1/completions"
                async with http.post(url, json=body) as response:
                    assert (await response.json())["usage"]["completion_tokens"] == 3
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert process.stderr is not None
        assert b"stopped" in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_unknown_profile_is_a_clear_cli_error() -> None:
    result = CliRunner().invoke(app, ["sim", "--profile", "tpu-9000"])
    assert result.exit_code == 2
    assert "unknown profile 'tpu-9000'" in result.output
