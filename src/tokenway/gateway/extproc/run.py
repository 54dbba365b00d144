"""Running the picker until a signal: ext_proc, health and metrics ports, hot reload, drain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tokenway.gateway.extproc.bootstrap import HEALTH_CHECK_INTERVAL
from tokenway.gateway.extproc.metrics import serve_metrics
from tokenway.gateway.extproc.server import EppServer, start_epp
from tokenway.gateway.gateway import Gateway
from tokenway.gateway.run import start_config_watcher, until_signal_or_failure
from tokenway.heap import freeze_startup

log = logging.getLogger(__name__)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def serve_picker_until_signal(
    gateway: Gateway,
    config_path: Path | None = None,
    on_ready: Callable[[EppServer, int], None] | None = None,
) -> None:
    """Serve the picker on the ports of `picker:` until SIGINT/SIGTERM, then drain.

    Draining sets readiness to NOT_SERVING first, so Envoy's health checks move new requests
    to the other replicas while the streams in flight finish.
    """
    settings = gateway.config.picker
    await gateway.start()
    picker = await start_epp(
        gateway.pipeline, _split(settings.listen), _split(settings.health_listen)
    )
    metrics_runner, metrics_port = await serve_metrics(gateway, *_split(settings.metrics_listen))
    watcher = start_config_watcher(gateway, config_path) if config_path is not None else None
    freeze_startup()
    try:
        if on_ready is not None:
            on_ready(picker, metrics_port)
        await until_signal_or_failure(gateway)
        log.info("picker shutting down: draining streams in flight")
    finally:
        if watcher is not None:
            await watcher.stop()
        await picker.stop(grace=5.0, drain=2 * HEALTH_CHECK_INTERVAL)
        await metrics_runner.cleanup()
        await gateway.stop()
