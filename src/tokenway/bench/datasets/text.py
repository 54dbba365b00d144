"""Deterministic filler text sized in tokens, at the ~4 characters per token simulators count."""

from __future__ import annotations

import math
import random

CHARS_PER_TOKEN = 4

_CONSONANTS = "bcdfghklmnprstvz"
_VOWELS = "aeiou"
# Three-letter syllable words plus a space make exactly one token each at 4 characters per token.
_WORDS = tuple(a + v + b for a in _CONSONANTS for v in _VOWELS for b in _CONSONANTS)


def estimate_tokens(text: str) -> int:
    """Token count of `text` at CHARS_PER_TOKEN characters per token (0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def filler(rng: random.Random, tokens: int) -> str:
    """Random word text of `tokens` tokens (estimate_tokens of the result equals `tokens`)."""
    return " ".join(rng.choices(_WORDS, k=max(tokens, 0)))
