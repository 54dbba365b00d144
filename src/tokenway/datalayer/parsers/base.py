"""What every engine's metrics parser provides."""

from __future__ import annotations

from typing import Protocol

from tokenway.datalayer.endpoint import EndpointMetrics


class MetricsFormatError(ValueError):
    """The page is not the engine's exposition (wrong engine configured, an HTML error page)."""


class MetricsParser(Protocol):
    """Turns one engine's /metrics text into Model Server Protocol signals; pure, no I/O."""

    engine: str
    """The engine name used in the platform file (`pools[].engine`)."""
    metrics_path: str | None
    """Path of the exposition on the endpoint; None for engines that expose no metrics."""

    def parse(self, text: str) -> EndpointMetrics:
        """Signals from one scrape; raises MetricsFormatError when required series are missing."""
        ...


def require(found: dict[str, object], engine: str, *names: str) -> None:
    """Raise MetricsFormatError unless every name was found."""
    missing = [name for name in names if name not in found]
    if missing:
        raise MetricsFormatError(f"not a {engine} metrics page: no {', '.join(missing)}")
