"""Scrapes every registered endpoint's metrics on an interval and reports into the registry.

The only I/O of the datalayer. Each tick starts a scrape for every endpoint that has none in
flight, so a slow endpoint is scraped as fast as it answers and never has requests piling up;
its metrics age in the meantime, and a scrape that exceeds the timeout counts as failed (which
makes the endpoint unready until one succeeds). Nothing escapes the loop: a scrape's error is a
failed scrape, and anything else is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tokenway.datalayer.parsers import parser_for
from tokenway.datalayer.registry import EndpointRegistry
from tokenway.net.http_client import ClientError, HttpClient

log = logging.getLogger(__name__)

_ACCEPT = {"Accept": "text/plain;version=0.0.4"}
"""Ask for the classic text format; OpenMetrics would work too but is not needed."""


class MetricsScraper:
    """Periodic, concurrent, at-most-one-in-flight-per-endpoint metrics scraping."""

    def __init__(
        self,
        registry: EndpointRegistry,
        client: HttpClient,
        *,
        interval: float = 0.05,
        timeout: float = 1.0,
    ) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        self._registry = registry
        self._client = client
        self._interval = interval
        self._timeout = timeout
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start scraping in the background on the running event loop."""
        if self._loop_task is not None:
            raise RuntimeError("the metrics scraper is already running")
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="scraper")

    async def stop(self) -> None:
        """Stop the loop and cancel scrapes in flight; safe to call when not running."""
        task, self._loop_task = self._loop_task, None
        tasks = [task, *self._in_flight.values()] if task else list(self._in_flight.values())
        for pending in tasks:
            pending.cancel()
        for pending in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await pending
        self._in_flight.clear()

    async def scrape_once(self) -> None:
        """Scrape every endpoint now and wait for all of them (start-up, tests)."""
        self._launch()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                self._launch()
            except Exception:
                log.exception("metrics scrape round failed")
            next_tick += self._interval
            now = loop.time()
            if next_tick < now:
                # Fell behind (a blocked loop): skip the missed ticks rather than burst.
                next_tick = now + self._interval
            await asyncio.sleep(next_tick - now)

    def _launch(self) -> None:
        for url, engine in self._registry.scrape_targets():
            path = parser_for(engine).metrics_path
            if path is None or url in self._in_flight:
                continue
            task = asyncio.get_running_loop().create_task(self._scrape(url, engine, path))
            self._in_flight[url] = task
            task.add_done_callback(lambda _, url=url: self._in_flight.pop(url, None))

    async def _scrape(self, url: str, engine: str, path: str) -> None:
        parser = parser_for(engine)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.request("GET", url + path, headers=_ACCEPT)
                try:
                    if response.status != 200:
                        raise ClientError(f"the metrics endpoint answered {response.status}")
                    body = await response.read()
                finally:
                    response.close()
            metrics = parser.parse(body.decode("utf-8", errors="replace"))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if self._registry.scrape_failed(url, slow=isinstance(error, TimeoutError)):
                log.warning("endpoint %s unready: metrics scrape failed: %r", url, error)
            return
        self._registry.update_metrics(url, metrics)
