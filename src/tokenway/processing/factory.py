"""Build the processor chain from the platform file: the one place built-in types are listed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tokenway.config.platform import PlatformConfig
from tokenway.config.processors import (
    CelSpec,
    InjectionSpec,
    LimitsSpec,
    PiiSpec,
    ProcessorSpec,
    SemanticRouterSpec,
)
from tokenway.processing.base import Processor, ResponseProcessor
from tokenway.processing.cel_processor import CelProcessor
from tokenway.processing.chain import Chain, Clock, StageInfo
from tokenway.processing.injection import InjectionProcessor
from tokenway.processing.limits import LimitsProcessor
from tokenway.processing.match import Matcher
from tokenway.processing.metrics import ProcessorMetrics
from tokenway.processing.pii import PiiProcessor
from tokenway.processing.semantic_router import SemanticRouter

BUILT_INS: dict[type[Any], Callable[[Any], Processor]] = {
    PiiSpec: PiiProcessor,
    InjectionSpec: InjectionProcessor,
    LimitsSpec: LimitsProcessor,
    SemanticRouterSpec: SemanticRouter,
    CelSpec: CelProcessor,
}
RESPONSE_BUILT_INS: dict[type[Any], Callable[[Any], ResponseProcessor]] = {
    PiiSpec: PiiProcessor,
}


def _info(spec: ProcessorSpec) -> StageInfo:
    return StageInfo(
        spec.name, spec.phase, Matcher(spec.match), spec.timeout, spec.failure == "closed"
    )


def build_chain(
    config: PlatformConfig, metrics: ProcessorMetrics, clock: Clock = time.thread_time
) -> Chain:
    """The chain of `config.processors`, in file order; with none it returns immediately.

    `metrics` is created once per registry (ProcessorMetrics(registry)) and shared by the
    chains that configuration reloads build.
    """
    stages: list[tuple[StageInfo, Processor]] = []
    response: list[tuple[StageInfo, ResponseProcessor]] = []
    for spec in config.processors:
        if spec.phase == "response":
            response.append((_info(spec), RESPONSE_BUILT_INS[type(spec)](spec)))
        else:
            stages.append((_info(spec), BUILT_INS[type(spec)](spec)))
    return Chain(stages, response, metrics, clock)
