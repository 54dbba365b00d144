"""The `slos:` section: latency objectives per public model, drawn on the rendered dashboard."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from tokenway.config.base import Section
from tokenway.config.units import Duration


class SloSpec(Section):
    """p95 targets for one public model name (of `models:`)."""

    model: str
    ttft_p95: Duration | None = None
    tpot_p95: Duration | None = None
    availability: float | None = Field(default=None, gt=0, lt=1)


def _known_models(slos: list[SloSpec], info: ValidationInfo) -> list[SloSpec]:
    models = {m.name for m in info.data.get("models", [])}
    unknown = [
        f"slos[{i}].model: unknown model {s.model!r}"
        for i, s in enumerate(slos)
        if s.model not in models
    ]
    if unknown:
        raise ValueError("; ".join(unknown))
    return slos


Slos = Annotated[list[SloSpec], AfterValidator(_known_models)]
"""The SLO list, checked against the models declared before it."""
