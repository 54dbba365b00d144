"""Redaction of a streamed answer: release text as soon as no finding can still span it.

After each chunk the filter scans the held-back text plus the chunk. For every detector it holds
back the trailing run of characters a match of that detector could consist of (at most the
detector's maximum match length): in plain prose that is the last unfinished word or digit group.
Findings that end before the hold-back point are final and are redacted in the released text.
The point first moves back before every finding that crosses it, those that lose an overlap
included: one that may still change may change which of the findings it overlaps wins. The last
few released characters are kept for the lookbehinds of the patterns, and only matches that
start after them count: one that starts in released text was decided with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokenway.processing.pii_patterns import LOOKBEHIND, Detector, Finding, find_all, resolve


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
        """The last released characters: what a lookbehind at the start of pending sees."""

    def _hold_from(self, text: str) -> int:
        reversed_tail = text[: -self._window - 1 : -1]
        longest = max(min(d.tail.match(reversed_tail).end(), d.max_len) for d in self._table)
        return len(text) - longest

    def _find_all(self, text: str) -> list[Finding]:
        context = self._before + text
        skip = len(self._before)
        return [
            Finding(f.start - skip, f.end - skip, f.kind)
            for f in find_all(context, self._table, skip)
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
        self._before = (self._before + text[max(upto - LOOKBEHIND, 0) : upto])[-LOOKBEHIND:]
        return "".join(parts)

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        if not text:
            return ""
        candidates = self._find_all(text)
        return self._release(text, _settled(self._hold_from(text), candidates), resolve(candidates))

    def finish(self) -> str:
        text = self._pending
        return self._release(text, len(text), resolve(self._find_all(text)))


def _settled(upto: int, candidates: list[Finding]) -> int:
    """The last point at or before upto that no candidate (overlapping ones included) crosses."""
    for candidate in sorted(candidates, key=lambda f: f.start, reverse=True):
        if candidate.start < upto < candidate.end:
            upto = candidate.start
    return upto
