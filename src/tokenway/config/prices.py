"""The `prices:` section: price per million tokens of each public model, for budgets and cost."""

from __future__ import annotations

from pydantic import Field

from tokenway.config.base import Section


class Price(Section):
    """Per 1M tokens, in the budget's currency. Cached input defaults to the input price."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


Prices = dict[str, Price]
"""Public model name -> price."""
