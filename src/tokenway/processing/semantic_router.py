"""The `semantic-router` processor: choose the model from the content of the request.

Keyword rules decide first (whole words of the folded last user message; the route with most
hits wins, ties by order). Otherwise a character n-gram classifier, trained from the routes'
example utterances when the configuration loads, picks a route; below the confidence threshold
the default route is taken. It runs before routing and rewrites `model` in the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tokenway.config.processors import SemanticRouterSpec
from tokenway.gateway.context import RequestContext
from tokenway.processing.base import Verdict
from tokenway.processing.classifier import NgramClassifier
from tokenway.processing.text import fold, last_user_text


@dataclass(frozen=True, slots=True)
class RouteChoice:
    model: str
    via: str
    """keyword, classifier or default."""
    confidence: float


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    words = "|".join(r"\s+".join(map(re.escape, fold(k).split())) for k in keywords)
    return re.compile(rf"\b(?:{words})\b")


class SemanticRouter:
    def __init__(self, spec: SemanticRouterSpec) -> None:
        self._spec = spec
        self._default = next(r.model for r in spec.routes if r.default)
        self._keywords = [
            (route.model, pattern)
            for route in spec.routes
            if (pattern := _keyword_pattern(route.keywords)) is not None
        ]
        trained = [route for route in spec.routes if route.examples]
        self._labels = [route.model for route in trained]
        examples = [(text, label) for label, r in enumerate(trained) for text in r.examples]
        self._classifier = NgramClassifier(examples, len(trained)) if examples else None

    def choose(self, text: str) -> RouteChoice:
        text = text[: self._spec.max_chars]
        folded = fold(text)
        best, hits = None, 0
        for model, pattern in self._keywords:
            count = len(pattern.findall(folded))
            if count > hits:
                best, hits = model, count
        if best is not None:
            return RouteChoice(best, "keyword", 1.0)
        if self._classifier is not None and text:
            prediction = self._classifier.predict(text)
            if prediction.confidence >= self._spec.threshold:
                return RouteChoice(
                    self._labels[prediction.label], "classifier", prediction.confidence
                )
            return RouteChoice(self._default, "default", prediction.confidence)
        return RouteChoice(self._default, "default", 0.0)

    def process(self, ctx: RequestContext) -> Verdict:
        choice = self.choose(last_user_text(ctx.body))
        note = f"model={choice.model} via={choice.via} confidence={choice.confidence:.2f}"
        if choice.model == ctx.model:
            return Verdict("route", note)
        return Verdict("route", note, body={**ctx.body, "model": choice.model}, model=choice.model)
