"""A team's current usage against each of its limits, read from the store (admin endpoint)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tokenway.admission.limits.plan import counter_key
from tokenway.admission.limits.rules import Rule, TeamLimits
from tokenway.admission.limits.store import LimitStore
from tokenway.admission.limits.windows import window
from tokenway.auth.canonical import canonical


def _scopes(rule: Rule, limits: TeamLimits, models: Sequence[str]) -> list[str]:
    if rule.scope == "key":
        return [f"key={k}" for k in limits.key_ids]
    if rule.scope == "model":
        return [f"model={canonical(m)}" for m in models if rule.applies_to(m)]
    if rule.scope == "user":
        return []
    return ["team"]


def _unit(value: int, rule: Rule) -> int | float:
    return value if rule.scale == 1 else value / rule.scale


async def team_usage(
    store: LimitStore,
    team: str,
    limits: TeamLimits,
    models: Sequence[str],
    now: float,
    prefix: str,
) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    counter_keys, slot_keys, counter_rows, slot_rows = [], [], [], []
    for rule in limits.rules:
        for scope in _scopes(rule, limits, models):
            row: dict[str, object] = {"limit": rule.describe, "kind": rule.kind, "scope": scope}
            if rule.kind == "concurrent":
                slot_keys.append(counter_key(prefix, team, rule, scope, None))
                slot_rows.append((row, rule, None))
            else:
                start, end = window(rule.per, now)
                counter_keys.append(counter_key(prefix, team, rule, scope, start))
                counter_rows.append((row, rule, end))
            rows.append(row)
    values = await store.read(counter_keys, slot_keys, now)
    for (row, rule, end), value in zip(counter_rows + slot_rows, values, strict=True):
        row["used"] = _unit(value, rule)
        row["max"] = _unit(rule.limit, rule)
        row["remaining"] = _unit(max(0, rule.limit - value), rule)
        if end is not None:
            row["resetsInSeconds"] = max(0, math.ceil(end - now))
    return {"team": team, "limits": rows}
