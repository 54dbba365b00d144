"""Priority shedding (InferenceObjective semantics): priority < 0 is sheddable.

Sheddable requests are rejected with 429 while the pool is saturated; priority >= 0 is never
shed, only queued.
"""

from __future__ import annotations

from tokenway.gateway.errors import GatewayError


def is_sheddable(priority: int) -> bool:
    return priority < 0


def should_shed(priority: int, saturated: bool) -> bool:
    return saturated and is_sheddable(priority)


def shed_error() -> GatewayError:
    return GatewayError(
        429,
        "The model's servers are saturated and this request's priority is sheddable; retry later.",
        code="pool_saturated",
        headers={"retry-after": "1"},
    )
