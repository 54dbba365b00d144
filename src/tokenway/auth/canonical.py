"""Canonical names and globs, so that look-alike spellings cannot slip past an allow-list.

Model, adapter and operation names are compared after Unicode NFKC normalisation (full-width and
compatibility characters fold to their plain forms), case folding and trimming, on both the
pattern and the name. Characters that only look alike (Cyrillic small a, U+0430, for Latin a)
stay distinct, so they never match an allow-list entry written in Latin letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from fnmatch import translate


def canonical(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


class NameGlobs:
    """Matches canonical names against fnmatch-style globs (`*`, `?`, `[...]`)."""

    __slots__ = ("_pattern", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(canonical(p) for p in patterns)
        joined = "|".join(translate(p) for p in self.patterns) or "(?!)"
        self._pattern = re.compile(joined)

    def match(self, name: str) -> bool:
        return self._pattern.fullmatch(canonical(name)) is not None


class PathGlobs:
    """Matches SPIFFE IDs: `*` stays within one path segment, `**` spans segments; the scheme
    and trust domain are literal, so a pattern never matches another trust domain."""

    __slots__ = ("_pattern", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._pattern = re.compile("|".join(_segment_glob(p) for p in self.patterns) or "(?!)")

    def match(self, spiffe_id: str) -> bool:
        return self._pattern.fullmatch(spiffe_id) is not None


def _segment_glob(pattern: str) -> str:
    parts = re.split(r"(\*\*|\*)", pattern)
    out = []
    for part in parts:
        if part == "**":
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        else:
            out.append(re.escape(part))
    return "(?:" + "".join(out) + ")"
