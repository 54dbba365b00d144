"""The `models:` section: public model names, where they route, and their priority."""

from __future__ import annotations

from pydantic import Field, model_validator

from tokenway.config.base import Section


class Target(Section):
    """One weighted destination of a public model: a served model name or a LoRA adapter."""

    model: str | None = None
    adapter: str | None = None
    weight: int = Field(default=1, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _one_destination(self) -> Target:
        if (self.model is None) == (self.adapter is None):
            raise ValueError("a target names exactly one of model or adapter")
        return self


class ModelSpec(Section):
    """What clients put in "model". Give `model`, `adapter` or weighted `targets` (canary/A-B).

    With none of them the public name is sent upstream unchanged.
    `priority` follows InferenceObjective: below 0 is sheddable while the pool saturates.
    """

    name: str = Field(min_length=1, max_length=256)
    pool: str
    model: str | None = None
    adapter: str | None = None
    targets: list[Target] = []
    priority: int = 0

    @model_validator(mode="after")
    def _one_form(self) -> ModelSpec:
        forms = sum(x is not None for x in (self.model, self.adapter)) + bool(self.targets)
        if forms > 1:
            raise ValueError("give only one of model, adapter or targets")
        if self.targets and sum(t.weight for t in self.targets) == 0:
            raise ValueError("targets need a positive total weight")
        return self

    def resolved_targets(self) -> list[Target]:
        """The weighted destinations, one for the single-destination forms."""
        if self.targets:
            return list(self.targets)
        if self.adapter is not None:
            return [Target(adapter=self.adapter)]
        return [Target(model=self.model or self.name)]
