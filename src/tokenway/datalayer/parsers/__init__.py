"""One metrics parser per model-server engine, registered here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tokenway.datalayer.parsers.base import MetricsFormatError, MetricsParser
from tokenway.datalayer.parsers.llamacpp import LlamacppParser
from tokenway.datalayer.parsers.openai import OpenaiParser
from tokenway.datalayer.parsers.sglang import SglangParser
from tokenway.datalayer.parsers.trtllm import TrtllmParser
from tokenway.datalayer.parsers.vllm import VllmParser

__all__ = ["ENGINES", "MetricsFormatError", "MetricsParser", "parser_for"]

ENGINES: Mapping[str, MetricsParser] = MappingProxyType(
    {
        parser.engine: parser
        for parser in (
            VllmParser(),
            SglangParser(),
            TrtllmParser(),
            LlamacppParser(),
            OpenaiParser(),
        )
    }
)
"""Engine name (as in `pools[].engine`) -> its parser."""


def parser_for(engine: str) -> MetricsParser:
    """The parser of an engine; ValueError names the known engines for an unknown one."""
    try:
        return ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})") from None
