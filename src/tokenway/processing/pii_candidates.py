"""Where in a text a detector could match: a few windows instead of the whole text.

A regex scan costs about 10 ns per character for every detector, which for nine detectors over a
32 KB prompt is milliseconds. Every detector needs a trigger, though: a decimal digit (cards,
phones, IBANs, national ids), an `@` (emails), or a long run of key characters (API keys and
high-entropy secrets). Digits and runs are found with numpy over one byte per character, and
those regexes then run only over windows around them, joined into one string with NUL
separators (a character no pattern matches); each window is wide enough to hold any match that
contains its trigger. E-mail addresses are matched only where a local part before an `@` starts.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Window = tuple[int, int]
Positions = npt.NDArray[np.int64]

SMALL = 512
"""Texts up to this length are scanned whole: finding triggers would cost more than it saves."""

DIGIT_MARGIN = 6
"""Characters kept around a digit: room for "DE89 ", "AB 12", "+(" or " C" next to digits."""


def _decimal_code_points() -> npt.NDArray[np.uint32]:
    text = "".join(map(chr, range(0x80, 0x1FC00)))
    points = np.array([ord(ch) for ch in re.findall(r"\d", text)], dtype=np.uint32)
    points.flags.writeable = False
    return points


def _table(characters: str) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=np.bool_)
    for ch in characters:
        table[ord(ch)] = True
    table.flags.writeable = False
    return table


NON_ASCII_DIGITS = _decimal_code_points()
"""Code points outside ASCII that `\\d` matches (full-width, Arabic-Indic, Devanagari, ...)."""
KEY_CHARACTERS = _table("0123456789+/_-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""[A-Za-z0-9+/_-], the alphabet of keys, tokens and base64, as a byte lookup table."""
ASCII_DIGITS = _table("0123456789")


@dataclass(frozen=True, slots=True)
class Region:
    """Windows of a text and their contents joined by NULs, for one regex pass."""

    windows: list[Window]
    joined: str
    offsets: list[int]
    """Where each window starts in `joined`."""

    def position(self, joined_index: int) -> int:
        """The text position of a position in `joined`."""
        index = bisect_right(self.offsets, joined_index) - 1
        return self.windows[index][0] + joined_index - self.offsets[index]

    def index(self, position: int) -> int:
        """The position in `joined` of a text position; past a window, the next window's start."""
        # (position + 1,) sorts after every window that starts at or before position.
        window = bisect_left(self.windows, (position + 1,)) - 1
        if window < 0:
            return 0
        start, end = self.windows[window]
        return self.offsets[window] + min(position - start, end - start + 1)


WHOLE = Region([], "", [])
_LOCAL_PART = re.compile(r"[\w.%+-]+")
"""Marks a text short enough to scan whole."""


def _merge(starts: Positions, ends: Positions) -> list[Window]:
    if len(starts) == 0:
        return []
    reach = np.maximum.accumulate(ends)
    breaks = np.flatnonzero(starts[1:] > reach[:-1]) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(ends) - 1]))
    return list(zip(starts[first].tolist(), reach[last].tolist(), strict=True))


class Scan:
    """The trigger regions of one text, each computed at most once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._bytes: npt.NDArray[np.uint8] | None = None
        self._regions: dict[str, Region | None] = {}
        self._runs: tuple[Positions, Positions] | None = None

    def _ascii(self) -> npt.NDArray[np.uint8]:
        """One byte per character: ASCII as is, anything else as "?" (in no trigger set)."""
        if self._bytes is None:
            encoded = self.text.encode("ascii", "replace")
            self._bytes = np.frombuffer(encoded, dtype=np.uint8)
        return self._bytes

    def _region(self, starts: Positions, ends: Positions) -> Region | None:
        windows = _merge(np.maximum(starts, 0), np.minimum(ends, len(self.text)))
        if not windows:
            return None
        offsets = []
        position = 0
        for a, b in windows:
            offsets.append(position)
            position += b - a + 1
        return Region(windows, "\0".join(self.text[a:b] for a, b in windows), offsets)

    def _cached(self, key: str, build: Callable[[], Region | None]) -> Region | None:
        if key not in self._regions:
            self._regions[key] = build()
        return self._regions[key]

    def digits(self) -> Region | None:
        """Windows of DIGIT_MARGIN characters around every decimal digit; None: no digit."""
        if len(self.text) <= SMALL:
            return WHOLE if re.search(r"\d", self.text) else None
        return self._cached("digits", self._digits)

    def _digits(self) -> Region | None:
        mask = ASCII_DIGITS.take(self._ascii())
        if not self.text.isascii():
            codes = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32)
            mask |= np.isin(codes, NON_ASCII_DIGITS)
        where = np.flatnonzero(mask).astype(np.int64)
        return self._region(where - DIGIT_MARGIN, where + DIGIT_MARGIN + 1)

    def local_part_starts(self, longest: int) -> list[int]:
        """Where the run of e-mail local-part characters before each `@` begins.

        An address can only start there (its pattern looks behind for these characters), so
        matching at these positions finds every address whose local part is at most `longest`
        characters, for the cost of one short reversed match per `@`.
        """
        starts = []
        at = self.text.find("@")
        while at >= 0:
            before = self.text[max(at - longest - 1, 0) : at][::-1]
            run = _LOCAL_PART.match(before)
            if run is not None and run.end() <= longest:
                starts.append(at - run.end())
            at = self.text.find("@", at + 1)
        return starts

    def runs(self, min_length: int) -> Region | None:
        """Runs of at least min_length characters of [A-Za-z0-9+/_-] (plus "==" padding)."""
        if len(self.text) <= SMALL:
            return WHOLE
        if self._runs is None:
            # Runs lie between separators: gaps in the positions of non-key characters.
            separators = np.flatnonzero(~KEY_CHARACTERS.take(self._ascii())).astype(np.int64)
            bounds = np.concatenate(([-1], separators, [len(self.text)]))
            self._runs = bounds[:-1] + 1, bounds[1:]
        starts, ends = self._runs
        long = ends - starts >= min_length
        return self._cached(
            f"runs-{min_length}", lambda: self._region(starts[long], ends[long] + 2)
        )
