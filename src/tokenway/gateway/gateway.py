"""The Gateway object: built from a platform file, owns the pipeline and the data-plane edges."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from tokenway.auth.rego_policy import PolicyError
from tokenway.config.errors import ConfigError, ConfigIssue
from tokenway.config.platform import PlatformConfig
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.datalayer.scraper import MetricsScraper
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.factory import build_state
from tokenway.gateway.pipeline import Pipeline
from tokenway.gateway.proxy import Forwarder
from tokenway.gateway.stage_factory import StageMetrics, build_stages
from tokenway.gateway.state import GatewayState, Stages
from tokenway.kube.discovery import discover, watched_pools
from tokenway.net.http_client import HttpClient
from tokenway.telemetry.access_log import AccessLog
from tokenway.telemetry.metrics import GatewayMetrics
from tokenway.telemetry.tracing import RequestTracer, trace_export

log = logging.getLogger(__name__)


class Gateway:
    """One gateway replica. `start()` opens the client pool and scrapers; `stop()` closes them."""

    def __init__(
        self,
        config: PlatformConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = GatewayMetrics(CollectorRegistry())
        self.registry = EndpointRegistry(clock)
        self.metrics.watch_pools(self.registry)
        self._stage_metrics = StageMetrics.on(self.metrics.registry)
        self._retired: list[Stages] = []
        stages = self._build_stages(config, None)
        state = build_state(config, self.registry, stages, clock, self.rng)
        self.pipeline = Pipeline(
            state, self.metrics, AccessLog(config.gateway.access_log), clock, self.rng
        )
        self._client: HttpClient | None = None
        self._scraper: MetricsScraper | None = None
        self._forwarder: Forwarder | None = None
        self._discovery: asyncio.Task[None] | None = None

    def _build_stages(self, config: PlatformConfig, previous: GatewayState | None) -> Stages:
        return build_stages(
            config,
            self._stage_metrics,
            None if previous is None else (previous.config, previous.stages),
        )

    @property
    def stages(self) -> Stages:
        return self.pipeline.state.stages

    @property
    def config(self) -> PlatformConfig:
        return self.pipeline.state.config

    @property
    def forwarder(self) -> Forwarder:
        assert self._forwarder is not None, "Gateway.start() was not awaited"
        return self._forwarder

    async def start(self) -> None:
        self._client = HttpClient()
        self._forwarder = Forwarder(self._client, self.pipeline, self.clock)
        settings = self.config.gateway
        self._scraper = MetricsScraper(
            self.registry,
            self._client,
            interval=settings.metrics_interval,
        )
        self._scraper.start()
        self._start_discovery()
        await self.stages.authenticator.start()
        self._apply_tracing(self.config)

    def _start_discovery(self) -> None:
        """Watch the InferencePools the config names (Kubernetes); static pools need nothing."""
        if watched_pools(self.config):
            self._discovery = asyncio.get_running_loop().create_task(
                discover(self.config, self.registry), name="discovery"
            )

    async def watch_discovery(self) -> None:
        """Returns (raising its error) only if Kubernetes discovery stops on its own: a picker
        or gateway whose pools can no longer be followed must not keep answering as ready."""
        while True:
            task = self._discovery
            if task is None:
                await asyncio.sleep(1.0)  # no InferencePool watched (a reload may add one)
                continue
            await asyncio.wait({task})
            if task is self._discovery:  # a reload or stop replaces it before cancelling it
                task.result()
                raise RuntimeError("kubernetes discovery stopped")

    async def _stop_discovery(self) -> None:
        task, self._discovery = self._discovery, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.warning("kubernetes discovery had stopped: %s", task.exception())

    def _apply_tracing(self, config: PlatformConfig) -> RequestTracer | None:
        """Export spans where the config (or environment) says; returns a tracer to shut down."""
        export = trace_export(config)
        current = self.pipeline.tracer
        if (current.export if current is not None else None) == export:
            return None
        self.pipeline.tracer = None if export is None else RequestTracer.export_to(export)
        return current

    async def stop(self) -> None:
        await self._stop_discovery()
        tracer, self.pipeline.tracer = self.pipeline.tracer, None
        if tracer is not None:
            # Flushing may wait for an unreachable collector: not on the event loop.
            await asyncio.to_thread(tracer.shutdown)
        for stages in [*self._retired, self.stages]:
            await stages.authenticator.close()
            if stages.limiter is not None:
                await stages.limiter.close()
        self._retired.clear()
        if self._scraper is not None:
            await self._scraper.stop()
        if self._client is not None:
            await self._client.close()

    async def reload(self, config: PlatformConfig) -> None:
        """Apply a validated configuration; requests in flight finish under the old one.

        Raises ConfigError (and changes nothing) when a referenced policy file is unusable.
        """
        previous = self.pipeline.state
        try:
            stages = self._build_stages(config, previous)
        except PolicyError as exc:
            raise ConfigError([ConfigIssue("access.rego", None, "access.rego", str(exc))]) from None
        await stages.authenticator.start()
        state = build_state(config, self.registry, stages, self.clock, self.rng, previous=previous)
        self.pipeline.swap(state)
        self.pipeline.access_log.enabled = config.gateway.access_log
        if self._client is not None and (retired := self._apply_tracing(config)) is not None:
            await asyncio.to_thread(retired.shutdown)
        # Requests in flight may still settle into the old limiter: close it at shutdown.
        await previous.stages.authenticator.close()
        old_limiter = previous.stages.limiter
        if old_limiter is not None and (
            stages.limiter is None or stages.limiter.store is not old_limiter.store
        ):
            self._retired.append(previous.stages)
        if watched_pools(config) != watched_pools(previous.config) and self._client is not None:
            await self._restart_discovery()
        self.metrics.config_reloads.labels("applied").inc()
        log.info(
            "configuration applied: %d pools, %d models", len(config.pools), len(config.models)
        )

    async def _restart_discovery(self) -> None:
        await self._stop_discovery()
        self._start_discovery()

    def ready(self) -> bool:
        """Ready once every pool has at least one healthy endpoint."""
        state = self.pipeline.state
        return all(
            any(snapshot.healthy for snapshot in state.registry.snapshots(name))
            for name in state.pools
        )

    async def usage_report(self, team: str) -> dict[str, object]:
        """Current usage against the team's limits and budget (the admin endpoint)."""
        limiter = self.stages.limiter
        if limiter is None:
            raise GatewayError(404, "no teams are configured", code="team_not_found")
        return await limiter.usage(team, [m.name for m in self.config.models])
