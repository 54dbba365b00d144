"""The ordered processor chain: matching, timing, failure modes, and applying verdicts.

Processors are pure CPU work over the request, so the chain runs them inline and measures each
call instead of moving it to a thread: a thread cannot interrupt a running regex (it holds the
GIL), and the hop alone would cost more than most processors. The work is bounded instead
(linear-time patterns, trigger windows, capped classifier input), and a call that overruns its
`timeout` is a failure like an exception: `closed` rejects the request with 503, `open`
continues with the (already computed) verdict. A processor that raises leaves the request
untouched; with `open` the chain moves on.

The clock is the thread's CPU time: a processor never waits, so that is its whole cost, while
wall time would add whatever the OS scheduler takes away on a busy host and turn preemption
into spurious 503s.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from tokenway.gateway.context import RequestContext
from tokenway.gateway.errors import GatewayError
from tokenway.gateway.parse import prompt_text, prompt_tokens_estimate
from tokenway.processing.base import (
    Processor,
    Rejection,
    ResponseProcessor,
    TextFilter,
    Verdict,
    summarize,
)
from tokenway.processing.match import Matcher
from tokenway.processing.metrics import ProcessorMetrics

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class StageInfo:
    """How the chain runs one configured processor."""

    name: str
    phase: str
    matcher: Matcher
    timeout: float
    fail_closed: bool


def _rejected(info: StageInfo, rejection: Rejection) -> GatewayError:
    reason = f": {rejection.reason}" if rejection.reason else ""
    return GatewayError(
        rejection.status,
        f"rejected by processor '{info.name}' (rule '{rejection.rule}'){reason}",
        code="processor_rejected",
    )


def _failed(info: StageInfo, what: str, code: str) -> GatewayError:
    message = f"processor '{info.name}' {what}; the request was not processed"
    return GatewayError(503, message, code=code)


def _refresh(ctx: RequestContext) -> None:
    """Keep the parsed fields in step with a body a processor replaced."""
    ctx.prompt_text = prompt_text(ctx.operation, ctx.body)
    ctx.prompt_tokens_estimate = prompt_tokens_estimate(ctx.operation, ctx.body, ctx.prompt_text)
    limit = ctx.body.get("max_completion_tokens", ctx.body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        ctx.max_tokens = limit


class Chain:
    """The processors of the pipeline's request phases, plus per-response filters for the proxy."""

    def __init__(
        self,
        stages: Sequence[tuple[StageInfo, Processor]],
        response_stages: Sequence[tuple[StageInfo, ResponseProcessor]],
        metrics: ProcessorMetrics,
        clock: Clock = time.thread_time,
    ) -> None:
        self._phases: dict[str, tuple[tuple[StageInfo, Processor], ...]] = {}
        for phase in ("pre-routing", "request"):
            selected = tuple(s for s in stages if s[0].phase == phase)
            if selected:
                self._phases[phase] = selected
        self._response = tuple(response_stages)
        self._metrics = metrics
        self._clock = clock

    async def run(self, phase: str, ctx: RequestContext) -> None:
        stages = self._phases.get(phase)
        if stages is None:
            return
        for info, processor in stages:
            if info.matcher.matches(ctx):
                self._run_one(info, processor, ctx)

    def _run_one(self, info: StageInfo, processor: Processor, ctx: RequestContext) -> None:
        key = f"processor.{info.name}"
        start = self._clock()
        try:
            verdict = processor.process(ctx)
        except Rejection as rejection:
            self._metrics.record(info.name, info.phase, self._clock() - start, "reject")
            ctx.annotations[key] = f"reject rule={rejection.rule}"
            raise _rejected(info, rejection) from None
        except Exception as exc:
            self._metrics.record(info.name, info.phase, self._clock() - start, "error")
            mode = "closed" if info.fail_closed else "open"
            ctx.annotations[key] = f"error {type(exc).__name__} failure={mode}"
            log.warning("processor %s failed: %s", info.name, type(exc).__name__)
            if info.fail_closed:
                raise _failed(info, "failed", "processor_failed") from None
            return
        elapsed = self._clock() - start
        if elapsed > info.timeout:
            self._metrics.record(info.name, info.phase, elapsed, "timeout")
            mode = "closed" if info.fail_closed else "open"
            ctx.annotations[key] = f"timeout {elapsed * 1000:.1f}ms failure={mode} {verdict.note}"
            if info.fail_closed:
                raise _failed(info, "exceeded its timeout", "processor_timeout")
        else:
            self._metrics.record(info.name, info.phase, elapsed, verdict.outcome)
            ctx.annotations[key] = f"{verdict.outcome} {verdict.note}".rstrip()
        self._metrics.found(info.name, verdict.counts)
        self._apply(verdict, ctx)

    @staticmethod
    def _apply(verdict: Verdict, ctx: RequestContext) -> None:
        if verdict.body is not None:
            ctx.body = verdict.body
            _refresh(ctx)
        if verdict.model is not None:
            ctx.model = verdict.model
        if verdict.headers:
            ctx.upstream_headers.update(verdict.headers)

    def response_filter(self, ctx: RequestContext) -> ResponseFilter | None:
        """A filter for this request's answer text, or None when no processor applies."""
        parts = []
        for info, processor in self._response:
            if info.matcher.matches(ctx):
                counts: Counter[str] = Counter()
                parts.append(_Part(info, processor.open_response(ctx, counts.update), counts))
        return ResponseFilter(parts, ctx, self._metrics, self._clock) if parts else None


@dataclass(slots=True)
class _Part:
    info: StageInfo
    filter: TextFilter
    counts: Counter[str]
    active: bool = True


class ResponseFilter:
    """One response's filters in order; feed() returns what may be sent to the client now.

    Raises GatewayError when a processor rejects the answer; the caller ends the response (for a
    stream already under way, with an error event) without sending the held-back text. A filter
    that raises with `failure: open` is dropped for the rest of the answer, and the text it was
    holding back at that moment is not released.
    """

    def __init__(
        self,
        parts: Sequence[_Part],
        ctx: RequestContext,
        metrics: ProcessorMetrics,
        clock: Clock,
    ) -> None:
        self._parts = parts
        self._ctx = ctx
        self._metrics = metrics
        self._clock = clock

    def _call(self, part: _Part, step: Callable[[], str], unfiltered: str) -> str:
        info = part.info
        start = self._clock()
        try:
            out = step()
        except Rejection as rejection:
            self._metrics.record(info.name, info.phase, self._clock() - start, "reject")
            self._ctx.annotations[f"processor.{info.name}"] = f"reject rule={rejection.rule}"
            self._metrics.found(info.name, part.counts)
            raise _rejected(info, rejection) from None
        except Exception as exc:
            self._metrics.record(info.name, info.phase, self._clock() - start, "error")
            log.warning("processor %s failed: %s", info.name, type(exc).__name__)
            if info.fail_closed:
                raise _failed(info, "failed", "processor_failed") from None
            part.active = False
            self._ctx.annotations[f"processor.{info.name}"] = "error failure=open"
            return unfiltered
        elapsed = self._clock() - start
        self._metrics.duration.labels(info.name, info.phase).observe(elapsed)
        if elapsed > info.timeout:
            self._metrics.decisions.labels(info.name, "timeout").inc()
            if info.fail_closed:
                raise _failed(info, "exceeded its timeout", "processor_timeout")
        return out

    def feed(self, text: str) -> str:
        for part in self._parts:
            if part.active:
                text = self._call(part, partial(part.filter.feed, text), text)
        return text

    def finish(self) -> str:
        text = ""
        for part in self._parts:
            if not part.active:
                continue
            if text:
                text = self._call(part, partial(part.filter.feed, text), text)
            text += self._call(part, part.filter.finish, "")
            self._settle(part)
        return text

    def _settle(self, part: _Part) -> None:
        outcome = "mutate" if part.counts else "pass"
        self._metrics.decisions.labels(part.info.name, outcome).inc()
        self._metrics.found(part.info.name, part.counts)
        note = summarize(part.counts)
        self._ctx.annotations[f"processor.{part.info.name}"] = f"{outcome} {note}".rstrip()
