"""The `injection` processor: prompt-injection and jailbreak heuristics with a score threshold.

Each rule that matches the folded prompt (NFKC, case-folded, invisible characters removed, so
full-width letters and zero-width spaces do not hide a phrase) contributes its score once; the
request's score is 1 - prod(1 - score_i), which stays in [0, 1] and grows with independent
evidence. At or above the threshold the request is rejected (403) or only flagged.

Rules only run where they can match: every built-in or phrase rule names groups of key words
("needles"), each match containing one of every group, and its quantifiers are bounded so a
match spans at most a few hundred characters. A rule whose needles are all present is searched
only in windows around the occurrences of its rarest group, so a long prompt costs about as
much as the text near those words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenway.config.processors import InjectionRule, InjectionSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import Rejection, Verdict
from tokenway.processing.text import fold, text_slots

SPAN = 480
"""Longer than any match of a built-in or phrase rule (their quantifiers are bounded)."""

_S = r"\s{1,8}"
_ANY = r"(?:\w{1,40}\s{1,8}){0,3}"
# (name, needles, pattern, score): a rule's regex runs only if every group of needles has one
# that occurs in the folded text (each match contains one of each group). `%` in a pattern
# stands for bounded whitespace and `~` for up to three bounded words.
Needles = tuple[tuple[str, ...], ...]
_BUILTIN: tuple[tuple[str, Needles, str, float], ...] = (
    (
        "ignore-instructions",
        (
            ("ignore", "disregard", "forget", "override", "bypass"),
            ("instruction", "prompt", "rules", "directions", "guidelines", "context"),
        ),
        r"\b(?:ignore|disregard|forget|override|bypass)%~(?:previous|prior|above|earlier"
        r"|preceding|system|original|initial)%~(?:instructions?|prompts?|rules|directions"
        r"|guidelines|context)\b",
        0.6,
    ),
    (
        "reveal-system-prompt",
        (
            ("reveal", "show", "print", "repeat", "output", "leak", "tell"),
            ("system", "hidden", "initial", "developer"),
        ),
        r"\b(?:reveal|show|print|repeat|output|leak|tell%me)%~(?:system%prompt"
        r"|hidden%(?:instructions|prompt)|initial%instructions|developer%message)\b",
        0.5,
    ),
    (
        "persona-override",
        (
            ("now", "act", "pretend", "roleplay"),
            ("dan", "unfiltered", "uncensored", "jailbroken", "evil", "without"),
        ),
        r"\b(?:you%are%now|from%now%on%you%are|act%as|pretend%(?:to%be|you%are)|roleplay%as)%"
        r"~(?:dan|unfiltered|uncensored|jailbroken|evil|without%(?:any%)?(?:restrictions|limits"
        r"|filters|rules))\b",
        0.6,
    ),
    (
        "do-anything-now",
        (("anything", "developer", "jailbreak"),),
        r"\b(?:do%anything%now|developer%mode%enabled|jailbreak(?:ed)?)\b",
        0.5,
    ),
    (
        "no-restrictions",
        (("restrictions", "guidelines", "filters", "limitations", "censorship"),),
        r"\b(?:no|without|free%(?:of|from))%(?:any%)?(?:ethical%|moral%|safety%)?"
        r"(?:restrictions|guidelines|filters|limitations|censorship)\b",
        0.3,
    ),
    (
        "new-instructions",
        (("instruction",),),
        r"(?:^|\n)[ \t]{0,8}(?:###[ \t]{0,8})?(?:new|updated|real)%(?:system%)?instructions?"
        r"[ \t]{0,8}:",
        0.4,
    ),
    (
        "fake-system-tag",
        (("<|", "<system", "<im_start", "<endoftext", "[inst", "[/inst", "[system"),),
        r"<\|?(?:system|im_start|endoftext)\|?>|\[/?inst\]|\[system\]",
        0.4,
    ),
)


def _expand(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("~", _ANY).replace("%", _S))


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    needles: Needles
    """Groups of substrings; every match contains one of each group. Empty: always run."""
    pattern: re.Pattern[str]
    score: float


def _compile(rule: InjectionRule) -> _Rule:
    if rule.pattern is not None:
        return _Rule(rule.name, (), re.compile(rule.pattern, re.IGNORECASE), rule.score)
    words = [fold(phrase).split() for phrase in rule.phrases]
    phrases = "|".join(_S.join(map(re.escape, w)) for w in words)
    needles = (tuple(w[0] for w in words if w),)
    return _Rule(rule.name, needles, re.compile(rf"\b(?:{phrases})\b"), rule.score)


def _windows(text: str, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    starts = []
    for needle in needles:
        at = text.find(needle)
        while at >= 0:
            starts.append(at)
            at = text.find(needle, at + 1)
    windows: list[tuple[int, int]] = []
    for at in sorted(starts):
        start, end = max(at - SPAN, 0), at + SPAN
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _matches(rule: _Rule, folded: str) -> bool:
    """Whether the rule matches, searching only near its rarest group of needles."""
    if not rule.needles:
        return rule.pattern.search(folded) is not None
    counts = [sum(folded.count(n) for n in group) for group in rule.needles]
    if not all(counts):
        return False
    if len(folded) <= 4 * SPAN:
        return rule.pattern.search(folded) is not None
    rarest = rule.needles[counts.index(min(counts))]
    return any(rule.pattern.search(folded, a, b) for a, b in _windows(folded, rarest))


class InjectionProcessor:
    def __init__(self, spec: InjectionSpec) -> None:
        self._spec = spec
        builtin = (
            [_Rule(n, w, _expand(p), s) for n, w, p, s in _BUILTIN] if spec.builtin_rules else []
        )
        self._rules = builtin + [_compile(rule) for rule in spec.rules]
        self._roles = frozenset(spec.roles)

    def score(self, text: str) -> tuple[float, list[str]]:
        """The combined score of the folded text and the names of the rules that matched."""
        folded = fold(text)
        keep = 1.0
        matched = []
        for rule in self._rules:
            if _matches(rule, folded):
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
