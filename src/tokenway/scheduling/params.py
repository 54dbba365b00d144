"""Strict parsing of plugin parameters: camelCase keys, unknown keys rejected, defaults filled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from tokenway.config.base import Section

P = TypeVar("P", bound=Section)


class NoParams(Section):
    """Parameters of a plugin that takes none."""


def parse_params(plugin: str, model: type[P], raw: Mapping[str, Any] | None) -> P:
    """`raw` as `model`; ValueError naming the plugin and each bad key on failure."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<params>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{plugin} params: {problems}") from None
