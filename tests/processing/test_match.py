from __future__ import annotations

import pytest
from tests.processing.helpers import chat, fullwidth, request

from tokenway.config.processors import ProcessorMatch
from tokenway.gateway.context import Route
from tokenway.processing.match import Matcher, request_model


@pytest.mark.parametrize("spelling", ["chat", "CHAT", " chat ", fullwidth("chat")])
def test_every_spelling_that_reaches_a_model_meets_its_processors(spelling: str) -> None:
    matcher = Matcher(ProcessorMatch.model_validate({"model": ["Chat"]}))
    ctx = request(chat("hi", model=spelling))
    assert matcher.matches(ctx)  # before routing: the name asked for, canonical
    ctx.route = Route("chat", "pool", "served", None, 0)
    assert matcher.matches(ctx) and request_model(ctx) == "chat"


def test_other_models_do_not_match() -> None:
    matcher = Matcher(ProcessorMatch.model_validate({"model": ["chat-*"]}))
    assert not matcher.matches(request(chat("hi", model="code")))
