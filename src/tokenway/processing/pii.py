"""The `pii` processor: personal data and secrets in prompts or answers, redacted or refused.

Emails, phone numbers, card numbers (Luhn), IBANs (mod 97), US SSNs, UK NI numbers, Spanish DNIs
(check letter), API keys by known prefix and other high-entropy tokens. Redaction replaces each
finding with the configured placeholder; rejection names only the kinds found.
"""

from __future__ import annotations

from collections import Counter

from tokenway.config.processors import PiiSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import PASS, Rejection, Report, TextFilter, Verdict, summarize
from tokenway.processing.pii_patterns import Finding, detectors, find, redact
from tokenway.processing.pii_stream import StreamRedactor
from tokenway.processing.text import replace_texts, text_slots


class PiiProcessor:
    def __init__(self, spec: PiiSpec) -> None:
        self._spec = spec
        self._table = detectors(spec.kinds, spec.entropy)
        self._roles = frozenset(spec.roles)

    def _reject(self, counts: Counter[str]) -> Rejection:
        return Rejection(400, "pii", f"contains {', '.join(sorted(counts))}")

    def process(self, ctx: RequestContext) -> Verdict:
        counts: Counter[str] = Counter()
        changes = {}
        for slot in text_slots(ctx.body, self._roles):
            findings = find(slot.text, self._table)
            if findings:
                counts.update(f.kind for f in findings)
                changes[slot.path] = redact(slot.text, findings, self._spec.placeholder)
        if not counts:
            return PASS
        if self._spec.action == "reject":
            raise self._reject(counts)
        return Verdict(
            "mutate",
            summarize(counts),
            body=replace_texts(ctx.body, changes),
            counts=counts,
        )

    def open_response(self, ctx: RequestContext, report: Report) -> TextFilter:
        def found(findings: list[Finding]) -> None:
            counts = Counter(f.kind for f in findings)
            report(counts)
            if self._spec.action == "reject":
                raise self._reject(counts)

        return StreamRedactor(self._table, self._spec.placeholder, found)
