"""Which counters one request touches and by how much: pure functions of rules, caller and time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenway.admission.limits.rules import Rule
from tokenway.admission.limits.store import Delta
from tokenway.admission.limits.windows import window
from tokenway.auth.canonical import canonical
from tokenway.auth.principal import Principal
from tokenway.gateway.context import Usage

EXPIRY_MARGIN_S = 60
"""Counters outlive their window a little, so a late settle still finds them."""


@dataclass(frozen=True, slots=True)
class CounterCharge:
    rule: Rule
    key: str
    charge: int
    reset_at: int
    expire_at: int


@dataclass(frozen=True, slots=True)
class SlotClaim:
    rule: Rule
    key: str


@dataclass(frozen=True, slots=True)
class Plan:
    counters: tuple[CounterCharge, ...]
    slots: tuple[SlotClaim, ...]


def scope_value(rule: Rule, principal: Principal, model: str) -> str:
    if rule.scope == "key":
        return "key=" + (principal.key_id or "-")
    if rule.scope == "user":
        return "user=" + (principal.user or "-")
    if rule.scope == "model":
        return "model=" + canonical(model)
    return "team"


def counter_key(prefix: str, team: str, rule: Rule, scope: str, start: int | None) -> str:
    # The {team} hash tag keeps one request's keys in one Redis Cluster slot.
    tail = "" if start is None else f":{start}"
    return f"{prefix}:{{{team}}}:{rule.id}:{scope}{tail}"


def plan_request(
    rules: Sequence[Rule],
    principal: Principal,
    model: str,
    estimate: Usage,
    now: float,
    prefix: str,
) -> Plan:
    counters, slots = [], []
    for rule in rules:
        if not rule.applies_to(model):
            continue
        scope = scope_value(rule, principal, model)
        if rule.kind == "concurrent":
            slots.append(SlotClaim(rule, counter_key(prefix, principal.team, rule, scope, None)))
            continue
        start, end = window(rule.per, now)
        key = counter_key(prefix, principal.team, rule, scope, start)
        counters.append(
            CounterCharge(rule, key, rule.charge(estimate, model), end, end + EXPIRY_MARGIN_S)
        )
    return Plan(tuple(counters), tuple(slots))


def settle_deltas(
    plan: Plan, usage: Usage, model: str, reserved: bool, served: bool
) -> list[Delta]:
    """What to add to each counter so that it holds the actual usage instead of the estimate
    (or, when the store could not reserve, the whole usage). Request counts stay as reserved
    for a request that was served, and are given back for one the gateway itself refused."""
    deltas = []
    for counter in plan.counters:
        if not served:
            delta = -counter.charge if reserved else 0
        elif counter.rule.kind == "requests" and reserved:
            continue
        else:
            delta = counter.rule.charge(usage, model) - (counter.charge if reserved else 0)
        if delta:
            deltas.append(Delta(counter.key, delta, counter.expire_at))
    return deltas
