"""Running a gateway until a signal: the HTTP listener, hot reload and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from tokenway.auth.tls import server_ssl_context
from tokenway.config.errors import ConfigError
from tokenway.config.reload import ConfigWatcher
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.server import build_app
from tokenway.heap import freeze_startup

log = logging.getLogger(__name__)


class ListenError(RuntimeError):
    """The listen address could not be bound (in use, not local, not resolvable)."""


def _reason(exc: OSError) -> str:
    # The event loop's message repeats the address; the errno's own text is the reason.
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


async def start_listener(
    gateway: Gateway, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve the gateway's HTTP API; returns the runner and the bound port (port 0 = any free).

    Raises ListenError when host:port cannot be bound."""
    runner = web.AppRunner(
        build_app(gateway), handler_cancellation=True, access_log=None, shutdown_timeout=5.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(f"cannot listen on {host}:{port}: {_reason(exc)}") from None
    return runner, int(runner.addresses[0][1])


def start_config_watcher(gateway: Gateway, path: Path) -> ConfigWatcher:
    """Reload `gateway` when its platform file changes; rejected files are counted."""

    def rejected(error: ConfigError) -> None:
        gateway.metrics.config_reloads.labels("rejected").inc()

    watcher = ConfigWatcher(path, gateway.reload, rejected, lambda: gateway.config)
    watcher.start()
    return watcher


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def until_signal_or_failure(gateway: Gateway) -> None:
    """Wait for SIGINT/SIGTERM; raise if the gateway's Kubernetes discovery dies first (so the
    process exits and its supervisor restarts it, instead of serving a pool it cannot see)."""
    signal_task = asyncio.create_task(wait_for_signal())
    watch = asyncio.create_task(gateway.watch_discovery())
    try:
        done, _ = await asyncio.wait({signal_task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if watch in done:
            log.error("kubernetes discovery failed: %s", watch.exception())
            watch.result()
    finally:
        for task in (signal_task, watch):
            task.cancel()
        await asyncio.gather(signal_task, watch, return_exceptions=True)


async def serve_until_signal(
    gateway: Gateway,
    host: str,
    port: int,
    config_path: Path | None = None,
    on_ready: Callable[[int], Awaitable[None] | None] | None = None,
) -> None:
    """Start the gateway, watch its config file, serve until SIGINT/SIGTERM, then drain."""
    await gateway.start()
    tls = gateway.config.gateway.tls
    try:
        runner, bound = await start_listener(
            gateway, host, port, server_ssl_context(tls) if tls is not None else None
        )
    except BaseException:
        await gateway.stop()
        raise
    watcher = start_config_watcher(gateway, config_path) if config_path is not None else None
    freeze_startup()
    try:
        if on_ready is not None:
            result = on_ready(bound)
            if result is not None:
                await result
        await until_signal_or_failure(gateway)
        log.info("shutting down: draining requests in flight")
    finally:
        if watcher is not None:
            await watcher.stop()
        await runner.cleanup()
        await gateway.stop()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on uvloop where available."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main)
