"""Redaction of a streamed answer: release text as soon as no finding can still span it.

After each chunk the filter scans the held-back text plus the chunk. For every detector it holds
back the trailing run of characters a match of that detector could consist of (at most the
detector's maximum match length): in plain prose that is the last unfinished word or digit group.
Findings that end before the hold-back point are final and are redacted in the released text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokenway.processing.pii_patterns import Detector, Finding, find


class StreamRedactor:
    """One response's incremental PII filter; `on_findings` may raise to reject the answer."""

    def __init__(
        self,
        table: Sequence[Detector],
        placeholder: str,
        on_findings: Callable[[list[Finding]], None],
    ) -> None:
        self._table = table
        self._placeholder = placeholder
        self._on_findings = on_findings
        self._window = max((d.max_len for d in table), default=0)
        self._pending = ""
        self._before = ""
        """The last released character: what a lookbehind at the start of pending sees."""

    def _hold_from(self, text: str) -> int:
        reversed_tail = text[: -self._window - 1 : -1]
        longest = max(min(d.tail.match(reversed_tail).end(), d.max_len) for d in self._table)
        return len(text) - longest

    def _find(self, text: str) -> list[Finding]:
        context = self._before + text
        skip = len(self._before)
        return [
            Finding(f.start - skip, f.end - skip, f.kind)
            for f in find(context, self._table)
            if f.start >= skip
        ]

    def _release(self, text: str, upto: int, findings: list[Finding]) -> str:
        final = [f for f in findings if f.end <= upto]
        if final:
            self._on_findings(final)
        parts = []
        position = 0
        for finding in final:
            parts.append(text[position : finding.start])
            parts.append(self._placeholder.replace("{kind}", finding.kind))
            position = finding.end
        parts.append(text[position:upto])
        self._pending = text[upto:]
        if upto:
            self._before = text[upto - 1]
        return "".join(parts)

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        if not text:
            return ""
        findings = self._find(text)
        upto = self._hold_from(text)
        for finding in findings:
            if finding.start < upto < finding.end:
                upto = finding.start
        return self._release(text, upto, findings)

    def finish(self) -> str:
        text = self._pending
        return self._release(text, len(text), self._find(text))
