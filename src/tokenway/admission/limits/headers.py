"""x-ratelimit-* headers (OpenAI's names) from the counters a request touched: for tokens and
for requests, the limit with the least room left."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tokenway.admission.limits.plan import CounterCharge, Plan


def rate_limit_headers(plan: Plan, values: Sequence[int], now: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    known = list(zip(plan.counters, values, strict=False))
    for kind, suffix in (("tokens", "tokens"), ("requests", "requests")):
        tightest = _tightest([(c, v) for c, v in known if c.rule.kind == kind])
        if tightest is None:
            continue
        counter, value = tightest
        headers[f"x-ratelimit-limit-{suffix}"] = str(counter.rule.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = str(max(0, counter.rule.limit - value))
        headers[f"x-ratelimit-reset-{suffix}"] = f"{max(0, math.ceil(counter.reset_at - now))}s"
    return headers


def _tightest(pairs: list[tuple[CounterCharge, int]]) -> tuple[CounterCharge, int] | None:
    return min(pairs, key=lambda pair: pair[0].rule.limit - pair[1], default=None)
