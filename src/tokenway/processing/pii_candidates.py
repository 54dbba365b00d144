"""Where in a text a detector could match: a few windows instead of the whole text.

A regex scan costs about 10 ns per character for every detector, which for nine detectors over a
32 KB prompt is milliseconds. Every detector needs a trigger, though: a decimal digit (cards,
phones, IBANs, national ids), an `@` (emails), a known key prefix, or a long run of token
characters (high-entropy secrets). Triggers are found with numpy over the code points and with
`str.find`, and the regexes then run only over windows around them. Each window is wide enough
to hold any match that contains its trigger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Window = tuple[int, int]
Codes = npt.NDArray[np.uint32]

SMALL = 512
"""Texts up to this length are scanned whole: finding triggers would cost more than it saves."""


def _decimal_code_points() -> npt.NDArray[np.uint32]:
    text = "".join(map(chr, range(0x80, 0x1FC00)))
    points = np.array([ord(ch) for ch in re.findall(r"\d", text)], dtype=np.uint32)
    points.flags.writeable = False
    return points


NON_ASCII_DIGITS = _decimal_code_points()
"""Code points outside ASCII that `\\d` matches (full-width, Arabic-Indic, Devanagari, ...)."""


def _merge(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> list[Window]:
    if len(starts) == 0:
        return []
    reach = np.maximum.accumulate(ends)
    breaks = np.flatnonzero(starts[1:] > reach[:-1]) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(ends) - 1]))
    return list(zip(starts[first].tolist(), reach[last].tolist(), strict=True))


class Scan:
    """The trigger windows of one text, each kind computed at most once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._codes: Codes | None = None
        self._digits: list[Window] | None = None

    @property
    def small(self) -> bool:
        return len(self.text) <= SMALL

    def _code_points(self) -> Codes:
        if self._codes is None:
            self._codes = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32)
        return self._codes

    def _clip(self, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> list[Window]:
        return _merge(np.maximum(starts, 0), np.minimum(ends, len(self.text)))

    def digits(self, margin: int) -> list[Window]:
        """Windows of `margin` characters around every decimal digit."""
        if self._digits is None:
            if self.small:
                self._digits = [(0, len(self.text))] if re.search(r"\d", self.text) else []
            else:
                codes = self._code_points()
                mask = (codes >= 48) & (codes <= 57)
                if not self.text.isascii():
                    mask |= np.isin(codes, NON_ASCII_DIGITS)
                where = np.flatnonzero(mask).astype(np.int64)
                self._digits = self._clip(where - margin, where + margin + 1)
        return self._digits

    def needles(self, needles: Sequence[str], before: int, after: int) -> list[Window]:
        """Windows from `before` characters ahead of each needle to `after` past its start."""
        found: list[int] = []
        for needle in needles:
            at = self.text.find(needle)
            while at >= 0:
                found.append(at)
                at = self.text.find(needle, at + 1)
        if not found:
            return []
        if self.small:
            return [(0, len(self.text))]
        where = np.array(sorted(found), dtype=np.int64)
        return self._clip(where - before, where + after)

    def runs(self, min_length: int) -> list[Window]:
        """Runs of at least min_length characters of [A-Za-z0-9+/_-] (base64 and key alphabets)."""
        if self.small:
            return [(0, len(self.text))]
        codes = self._code_points()
        mask = (
            ((codes >= 48) & (codes <= 57))
            | ((codes >= 65) & (codes <= 90))
            | ((codes >= 97) & (codes <= 122))
            | (codes == 43)
            | (codes == 47)
            | (codes == 95)
            | (codes == 45)
        )
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
        starts, ends = edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)
        long = ends - starts >= min_length
        return self._clip(starts[long], ends[long] + 2)
