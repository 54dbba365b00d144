"""The `injection` processor: prompt-injection and jailbreak heuristics with a score threshold.

Each rule that matches the folded prompt (NFKC, case-folded, invisible characters removed, so
full-width letters and zero-width spaces do not hide a phrase) contributes its score once; the
request's score is 1 - prod(1 - score_i), which stays in [0, 1] and grows with independent
evidence. At or above the threshold the request is rejected (403) or only flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenway.config.processors import InjectionRule, InjectionSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import Rejection, Verdict
from tokenway.processing.text import fold, text_slots

_ANY = r"(?:\w+\s+){0,3}"
# (name, needles, pattern, score): a rule's regex runs only if one of its needles (substrings
# every match contains) occurs in the folded text, so unrelated prompts cost a few `in` tests.
_BUILTIN: tuple[tuple[str, tuple[str, ...], str, float], ...] = (
    (
        "ignore-instructions",
        ("ignore", "disregard", "forget", "override", "bypass"),
        rf"\b(?:ignore|disregard|forget|override|bypass)\s+{_ANY}(?:previous|prior|above|earlier"
        rf"|preceding|system|original|initial)\s+{_ANY}(?:instructions?|prompts?|rules|directions"
        r"|guidelines|context)\b",
        0.6,
    ),
    (
        "reveal-system-prompt",
        ("system", "hidden", "initial", "developer"),
        rf"\b(?:reveal|show|print|repeat|output|leak|tell\s+me)\s+{_ANY}(?:system\s+prompt|hidden"
        r"\s+(?:instructions|prompt)|initial\s+instructions|developer\s+message)\b",
        0.5,
    ),
    (
        "persona-override",
        ("now", "act", "pretend", "roleplay"),
        r"\b(?:you\s+are\s+now|from\s+now\s+on\s+you\s+are|act\s+as|pretend\s+(?:to\s+be|you\s+are)"
        r"|roleplay\s+as)\s+(?:\w+\s+){0,4}(?:dan|unfiltered|uncensored|jailbroken|evil"
        r"|without\s+(?:any\s+)?(?:restrictions|limits|filters|rules))\b",
        0.6,
    ),
    (
        "do-anything-now",
        ("anything", "developer", "jailbreak"),
        r"\b(?:do\s+anything\s+now|developer\s+mode\s+enabled|jailbreak(?:ed)?)\b",
        0.5,
    ),
    (
        "no-restrictions",
        ("restrictions", "guidelines", "filters", "limitations", "censorship"),
        r"\b(?:no|without|free\s+(?:of|from))\s+(?:any\s+)?(?:ethical\s+|moral\s+|safety\s+)?"
        r"(?:restrictions|guidelines|filters|limitations|censorship)\b",
        0.3,
    ),
    (
        "new-instructions",
        ("instruction",),
        r"(?:^|\n)\s*(?:###\s*)?(?:new|updated|real)\s+(?:system\s+)?instructions?\s*:",
        0.4,
    ),
    (
        "fake-system-tag",
        ("<", "[inst", "[/inst", "[system"),
        r"<\|?(?:system|im_start|endoftext)\|?>|\[/?inst\]|\[system\]",
        0.4,
    ),
)


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    needles: tuple[str, ...]
    """Substrings of the folded text of which every match contains one; empty: always run."""
    pattern: re.Pattern[str]
    score: float


def _compile(rule: InjectionRule) -> _Rule:
    if rule.pattern is not None:
        return _Rule(rule.name, (), re.compile(rule.pattern, re.IGNORECASE), rule.score)
    words = [fold(phrase).split() for phrase in rule.phrases]
    phrases = "|".join(r"\s+".join(map(re.escape, w)) for w in words)
    needles = tuple(w[0] for w in words if w)
    return _Rule(rule.name, needles, re.compile(rf"\b(?:{phrases})\b"), rule.score)


class InjectionProcessor:
    def __init__(self, spec: InjectionSpec) -> None:
        self._spec = spec
        builtin = (
            [_Rule(n, w, re.compile(p), s) for n, w, p, s in _BUILTIN] if spec.builtin_rules else []
        )
        self._rules = builtin + [_compile(rule) for rule in spec.rules]
        self._roles = frozenset(spec.roles)

    def score(self, text: str) -> tuple[float, list[str]]:
        """The combined score of the folded text and the names of the rules that matched."""
        folded = fold(text)
        keep = 1.0
        matched = []
        for rule in self._rules:
            if rule.needles and not any(needle in folded for needle in rule.needles):
                continue
            if rule.pattern.search(folded):
                keep *= 1.0 - rule.score
                matched.append(rule.name)
        return 1.0 - keep, matched

    def process(self, ctx: RequestContext) -> Verdict:
        text = "\n".join(slot.text for slot in text_slots(ctx.body, self._roles))
        score, matched = self.score(text)
        if score < self._spec.threshold:
            return Verdict("pass", f"score={score:.2f}")
        rules = "+".join(matched)
        if self._spec.action == "flag":
            return Verdict("flag", f"score={score:.2f} rules={rules}")
        raise Rejection(403, rules, f"injection score {score:.2f}")
