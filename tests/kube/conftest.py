"""Fixtures for the Kubernetes tests: the example platform file and the upstream CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tokenway.config.loader import parse_platform
from tokenway.kube.crd_schema import CrdSchemas, load_crds
from tokenway.kube.render import RenderInput

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "examples" / "platform.yaml"
CRDS = REPO / ".." / "shared" / "crds"
DRA_EXAMPLES = REPO / ".." / "shared" / "examples" / "dra"


def render_input(text: str, policies: dict[str, str] | None = None) -> RenderInput:
    return RenderInput(parse_platform(text, "platform.yaml"), yaml.safe_load(text), policies or {})


@pytest.fixture(scope="session")
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def crds() -> CrdSchemas:
    return load_crds(CRDS)
