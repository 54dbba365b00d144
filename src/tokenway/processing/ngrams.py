"""Character n-gram features of a text, vectorised in numpy.

N-grams (2 to 5 characters of the folded text, spaces collapsed, digits as 0) are identified by
a 64-bit polynomial hash computed for all positions at once; a vocabulary is the sorted array of
hashes seen in training, and lookup is a binary search, so featurising an 8,000-character prompt
costs a few array passes instead of a Python loop per character.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from tokenway.processing.text import fold

SIZES = (2, 3, 4, 5)
_BASE = np.uint64(1_000_003)
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\d")

Hashes = npt.NDArray[np.uint64]
Vector = npt.NDArray[np.float32]


def prepare(text: str) -> str:
    # Every digit becomes 0 so that numbers share n-grams whatever their value.
    return f" {_DIGITS.sub('0', _SPACES.sub(' ', fold(text))).strip()} "


def ngram_hashes(text: str) -> Hashes:
    """Hashes of every n-gram of the prepared text, for each size in SIZES."""
    codes = np.frombuffer(prepare(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    for size in SIZES:
        count = len(codes) - size + 1
        if count <= 0:
            continue
        value = np.full(count, np.uint64(size), dtype=np.uint64)
        for offset in range(size):
            value = value * _BASE + codes[offset : offset + count]
        parts.append(value)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


class Vocabulary:
    """N-gram hashes seen in training, with inverse document frequencies."""

    def __init__(self, documents: list[Hashes]) -> None:
        unique = [np.unique(doc) for doc in documents]
        hashes, df = np.unique(np.concatenate(unique), return_counts=True)
        self.hashes = hashes
        self.idf = (np.log((1 + len(documents)) / (1 + df)) + 1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.hashes)

    def sparse(self, hashes: Hashes) -> tuple[npt.NDArray[np.intp], Vector]:
        """Indices of known n-grams and their L2-normalised log-tf x idf weights."""
        if len(hashes) == 0 or len(self.hashes) == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        position = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        known = position[self.hashes[position] == hashes]
        index, counts = np.unique(known, return_counts=True)
        weights = (np.log1p(counts) * self.idf[index]).astype(np.float32)
        norm = float(np.linalg.norm(weights))
        return index, weights / norm if norm > 0 else weights
