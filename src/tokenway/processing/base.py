"""What a processor is: a pure function of the request that returns its verdict.

Processors never mutate the request context. They return a `Verdict` holding the changes
(a new body, a model, headers) and the chain applies them after checking the processor's time
budget, so a processor that fails leaves no half-applied change behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tokenway.gateway.context import RequestContext

Outcome = Literal["pass", "mutate", "route", "flag", "reject", "error", "timeout"]


class Rejection(Exception):
    """A processor refuses the request; `rule` names why, never the offending content."""

    def __init__(self, status: int, rule: str, reason: str = "") -> None:
        super().__init__(rule)
        self.status = status
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one processor call: what to change, and a note for the access log."""

    outcome: Outcome = "pass"
    note: str = ""
    """A content-free description (rule names, counts, scores) for annotations."""
    body: dict[str, Any] | None = None
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    """Findings per kind (PII), exported as metrics."""


PASS = Verdict()


def summarize(counts: Mapping[str, int]) -> str:
    """`kind=n,...` in kind order: a content-free note of what was found."""
    return ",".join(f"{kind}={n}" for kind, n in sorted(counts.items()))


class Processor(Protocol):
    def process(self, ctx: RequestContext) -> Verdict:
        """Decide on the request; raise Rejection to refuse it. Must not mutate ctx."""
        ...


class TextFilter(Protocol):
    """Incremental filter of one response's text, created per response."""

    def feed(self, text: str) -> str:
        """Text that is safe to release now; holds back only a possibly unfinished match."""
        ...

    def finish(self) -> str:
        """The held-back rest, once the response is complete."""
        ...


Report = Callable[[Mapping[str, int]], None]
"""Receives findings per kind as a response filter makes them final (for metrics)."""


class ResponseProcessor(Protocol):
    def open_response(self, ctx: RequestContext, report: Report) -> TextFilter:
        """A fresh filter for one response; its calls raise Rejection to refuse it."""
        ...
