"""Limits of the platform file compiled into rules: what each counts and how much it allows.

Token rules count input, output or total tokens, or a CEL cost; money budgets count nano-units
of the currency from the price table (per 1M tokens), so that the stores only add integers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import cel
import xxhash

from tokenway.auth.canonical import NameGlobs
from tokenway.config.prices import Price
from tokenway.config.teams import BudgetSpec, LimitSpec, Period, Scope
from tokenway.gateway.context import Usage

log = logging.getLogger(__name__)

Kind = Literal["tokens", "requests", "concurrent", "budget"]
Charge = Callable[[Usage, str], int]
NANO = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    """Stable across restarts and replicas while the rule is unchanged: part of counter keys."""
    kind: Kind
    limit: int
    per: Period
    scope: Scope
    models: NameGlobs | None
    charge: Charge
    describe: str
    scale: int = 1
    """Counted units per reported unit: NANO for money budgets, else 1."""

    def applies_to(self, model: str) -> bool:
        return self.models is None or self.models.match(model)


@dataclass(frozen=True, slots=True)
class TeamLimits:
    rules: tuple[Rule, ...]
    currency: str = "USD"
    key_ids: tuple[str, ...] = ()
    """The team's API key labels, for reporting per-key counters."""


def compile_limit(spec: LimitSpec) -> Rule:
    rule_id = xxhash.xxh64_hexdigest(spec.model_dump_json().encode())[:12]
    models = NameGlobs(spec.models) if spec.models else None
    if spec.requests is not None:
        return Rule(
            rule_id,
            "requests",
            spec.requests,
            spec.per,
            spec.scope,
            models,
            _one,
            f"{spec.requests} requests/{spec.per}",
        )
    if spec.concurrent is not None:
        return Rule(
            rule_id,
            "concurrent",
            spec.concurrent,
            spec.per,
            spec.scope,
            models,
            _one,
            f"{spec.concurrent} concurrent",
        )
    assert spec.tokens is not None
    charge = _cost(spec.cost) if spec.cost is not None else _COUNTS[spec.count]
    what = f"cost {spec.cost}" if spec.cost else f"{spec.count} tokens"
    return Rule(
        rule_id,
        "tokens",
        spec.tokens,
        spec.per,
        spec.scope,
        models,
        charge,
        f"{spec.tokens} {what}/{spec.per}",
    )


def compile_budget(spec: BudgetSpec, prices: Mapping[str, Price]) -> Rule:
    rule_id = "budget-" + xxhash.xxh64_hexdigest(spec.model_dump_json().encode())[:8]
    if spec.tokens is not None:
        return Rule(
            rule_id,
            "budget",
            spec.tokens,
            spec.per,
            "team",
            None,
            _COUNTS["total"],
            f"budget {spec.tokens} tokens/{spec.per}",
        )
    assert spec.amount is not None
    return Rule(
        rule_id,
        "budget",
        round(spec.amount * NANO),
        spec.per,
        "team",
        None,
        _priced(dict(prices)),
        f"budget {spec.amount} {spec.currency}/{spec.per}",
        NANO,
    )


def _one(usage: Usage, model: str) -> int:
    return 1


_COUNTS: dict[str, Charge] = {
    "input": lambda usage, model: usage.prompt_tokens,
    "output": lambda usage, model: usage.completion_tokens,
    "total": lambda usage, model: usage.total_tokens,
}


def cost_variables(usage: Usage, model: str) -> dict[str, object]:
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_input_tokens": usage.cached_tokens or 0,
        "model": model,
    }


def _cost(expression: str) -> Charge:
    program = cel.compile(expression)

    def charge(usage: Usage, model: str) -> int:
        try:
            value = program.execute(cost_variables(usage, model))
            return max(0, math.ceil(value))
        except (TypeError, ValueError, RuntimeError, ArithmeticError) as exc:
            # The config check ran the expression once; a failure here is data-dependent
            # (division by zero, an infinite or NaN result), and charging total tokens keeps the
            # limit meaningful.
            log.warning("cost expression %r failed (%s); charging total tokens", expression, exc)
            return usage.total_tokens

    return charge


def price_nano(price: Price, usage: Usage) -> int:
    cached = min(usage.cached_tokens or 0, usage.prompt_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    per_million = (
        (usage.prompt_tokens - cached) * price.input
        + cached * cached_price
        + usage.completion_tokens * price.output
    )
    return math.ceil(per_million * NANO / 1_000_000)


def _priced(prices: dict[str, Price]) -> Charge:
    def charge(usage: Usage, model: str) -> int:
        price = prices.get(model)
        return price_nano(price, usage) if price is not None else 0

    return charge
