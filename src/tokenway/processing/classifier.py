"""A linear text classifier trained when the configuration loads: ridge regression on n-grams.

Targets are one-hot without an intercept, so a text sharing no n-grams with any class scores
about 0 and a text like a class's examples scores about 1. The confidence is the margin of the
top score over the runner-up: text unlike every class scores all classes alike, through common
n-grams only, and gets a small margin that a threshold can cut. With a single class the
runner-up is the binary decision boundary of 0/1 targets, 0.5. Training solves the dual form
(n x n, n = number of examples), which is exact and takes milliseconds for hundreds of examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokenway.processing.ngrams import Vector, Vocabulary, ngram_hashes

RIDGE = 0.5
"""L2 regularisation; examples are unit vectors, so this is relative to a self-similarity of 1."""

ONE_CLASS_BOUNDARY = 0.5
"""The runner-up score when only one route has examples: the 0/1 targets' decision boundary."""


@dataclass(frozen=True, slots=True)
class Prediction:
    label: int
    confidence: float
    scores: Vector


class NgramClassifier:
    def __init__(self, examples: Sequence[tuple[str, int]], classes: int) -> None:
        hashes = [ngram_hashes(text) for text, _ in examples]
        self.vocabulary = Vocabulary(hashes)
        rows = [self.vocabulary.sparse(h) for h in hashes]
        features = np.zeros((len(rows), len(self.vocabulary)), dtype=np.float32)
        for i, (index, values) in enumerate(rows):
            features[i, index] = values
        targets = np.zeros((len(examples), classes), dtype=np.float32)
        targets[np.arange(len(examples)), [label for _, label in examples]] = 1.0
        # Row by row over each example's non-zero n-grams: a few hundred small products instead
        # of one large multi-threaded BLAS call, which stalls on a busy machine.
        gram = np.empty((len(rows), len(rows)), dtype=np.float32)
        for i, (index, values) in enumerate(rows):
            gram[:, i] = features[:, index] @ values
        dual = np.linalg.solve(gram + RIDGE * np.eye(len(rows), dtype=np.float32), targets)
        self.weights = np.zeros((len(self.vocabulary), classes), dtype=np.float32)
        for i, (index, values) in enumerate(rows):
            self.weights[index] += np.outer(values, dual[i])

    def predict(self, text: str) -> Prediction:
        index, values = self.vocabulary.sparse(ngram_hashes(text))
        scores = values @ self.weights[index]
        order = np.argsort(scores)[::-1]
        runner_up = max(float(scores[order[1]]), 0.0) if len(order) > 1 else ONE_CLASS_BOUNDARY
        margin = float(scores[order[0]]) - runner_up
        return Prediction(int(order[0]), float(np.clip(margin, 0.0, 1.0)), scores)
