"""A linear text classifier trained when the configuration loads: ridge regression on n-grams.

Targets are one-hot without an intercept, so a text sharing no n-grams with any class scores
about 0 and a text like a class's examples scores about 1: the top score doubles as a
confidence that a threshold can cut. Training solves the dual form (n x n, n = number of
examples), which is exact and takes milliseconds for hundreds of examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokenway.processing.ngrams import Vector, Vocabulary, ngram_hashes

RIDGE = 0.5
"""L2 regularisation; examples are unit vectors, so this is relative to a self-similarity of 1."""


@dataclass(frozen=True, slots=True)
class Prediction:
    label: int
    confidence: float
    scores: Vector


class NgramClassifier:
    def __init__(self, examples: Sequence[tuple[str, int]], classes: int) -> None:
        hashes = [ngram_hashes(text) for text, _ in examples]
        self.vocabulary = Vocabulary(hashes)
        features = np.stack([self.vocabulary.dense(h) for h in hashes])
        targets = np.zeros((len(examples), classes), dtype=np.float32)
        targets[np.arange(len(examples)), [label for _, label in examples]] = 1.0
        gram = features @ features.T + RIDGE * np.eye(len(examples), dtype=np.float32)
        self.weights = features.T @ np.linalg.solve(gram, targets)

    def predict(self, text: str) -> Prediction:
        index, values = self.vocabulary.sparse(ngram_hashes(text))
        scores = values @ self.weights[index]
        label = int(np.argmax(scores))
        return Prediction(label, float(np.clip(scores[label], 0.0, 1.0)), scores)
