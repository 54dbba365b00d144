"""The `teams:` section: who a team's callers are, what they may use, and how much."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import cel
from pydantic import AfterValidator, Field, model_validator

from tokenway.config.base import Section

Period = Literal["minute", "hour", "day", "month"]
Scope = Literal["team", "key", "user", "model"]
Count = Literal["input", "output", "total"]

_SHA256 = r"^[0-9a-f]{64}$"
_TEAM_NAME = r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$"


class ApiKeyRef(Section):
    """An API key, stored only as the hex SHA-256 of the key (`tokenway keys create`)."""

    sha256: str = Field(pattern=_SHA256)
    label: str = Field(default="", max_length=64, pattern=r"^[-_.A-Za-z0-9]*$")


class JwtMatch(Section):
    """Tokens of `issuer` whose `claim` equals (or, for a list claim, contains) `value`."""

    issuer: str = Field(min_length=1)
    audience: str | None = None
    claim: str = Field(default="groups", min_length=1)
    value: str = Field(min_length=1)


class Identities(Section):
    api_keys: list[ApiKeyRef] = []
    spiffe: list[str] = []
    """SPIFFE ID patterns: `*` matches within one path segment, `**` across segments."""
    jwt: list[JwtMatch] | JwtMatch = []

    def jwt_matches(self) -> list[JwtMatch]:
        return [self.jwt] if isinstance(self.jwt, JwtMatch) else list(self.jwt)

    @model_validator(mode="after")
    def _spiffe_ids(self) -> Identities:
        for pattern in self.spiffe:
            if not re.match(r"^spiffe://[a-z0-9._-]+(/.*)?$", pattern):
                raise ValueError(f"{pattern!r} is not a spiffe://trust-domain/path pattern")
        return self


COST_VARIABLES = frozenset(
    {"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "model"}
)


def _check_cost(expression: str) -> None:
    try:
        program = cel.compile(expression)
    except ValueError as exc:
        raise ValueError(f"cost is not a CEL expression: {exc}") from None
    unknown = set(program.variables()) - COST_VARIABLES
    if unknown:
        raise ValueError(
            f"cost uses unknown variables {sorted(unknown)}; use {sorted(COST_VARIABLES)}"
        )
    sample = {name: 1 for name in COST_VARIABLES} | {"model": "m"}
    try:
        result = program.execute(sample)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"cost cannot be evaluated (write double(x) * 1.5 for fractions): {exc}"
        ) from None
    if isinstance(result, bool) or not isinstance(result, int | float):
        raise ValueError("cost must evaluate to a number")


class LimitSpec(Section):
    """One limit: give exactly one of `tokens`, `requests` or `concurrent`.

    Tokens are counted as `count` (input, output or total), or as the CEL expression `cost` over
    input_tokens, output_tokens, total_tokens and cached_input_tokens. `scope` says whose counter
    it is (the team's, each API key's, each user's, or each model's within the team); `models`
    restricts the limit to matching public model names (globs).
    """

    tokens: int | None = Field(default=None, ge=1)
    requests: int | None = Field(default=None, ge=1)
    concurrent: int | None = Field(default=None, ge=1)
    per: Period = "minute"
    count: Count = "total"
    cost: str | None = Field(default=None, min_length=1, max_length=1024)
    scope: Scope = "team"
    models: list[str] = []

    @model_validator(mode="after")
    def _one_kind(self) -> LimitSpec:
        kinds = [k for k in ("tokens", "requests", "concurrent") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a limit gives exactly one of tokens, requests or concurrent")
        if self.cost is not None and self.tokens is None:
            raise ValueError("cost applies to token limits only")
        if self.cost is not None:
            _check_cost(self.cost)
        return self


class BudgetSpec(Section):
    """Spend allowed per period: `amount` in `currency` (priced by `prices:`), or `tokens`."""

    amount: float | None = Field(default=None, gt=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    tokens: int | None = Field(default=None, ge=1)
    per: Period = "month"

    @model_validator(mode="after")
    def _one_kind(self) -> BudgetSpec:
        if (self.amount is None) == (self.tokens is None):
            raise ValueError("a budget gives exactly one of amount or tokens")
        return self


class TeamSpec(Section):
    """A team: its identities, its allow-lists (globs; adapters default to no extra
    restriction) and its limits."""

    name: str = Field(pattern=_TEAM_NAME, max_length=63)
    identities: Identities = Identities()
    models: list[str] = ["*"]
    adapters: list[str] | None = None
    operations: list[str] = ["*"]
    limits: list[LimitSpec] = []
    budget: BudgetSpec | None = None


def _unique(teams: list[TeamSpec]) -> list[TeamSpec]:
    names = [t.name for t in teams]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate team names {sorted({n for n in names if names.count(n) > 1})}")
    hashes = [k.sha256 for t in teams for k in t.identities.api_keys]
    if len(set(hashes)) != len(hashes):
        raise ValueError("an API key hash is listed more than once")
    return teams


Teams = Annotated[list[TeamSpec], AfterValidator(_unique)]
"""Team names and API key hashes are unique."""
