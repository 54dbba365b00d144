from __future__ import annotations

import pytest

from tokenway.config.processors import SemanticRouterSpec
from tokenway.processing.semantic_router import SemanticRouter

from .helpers import chain_of, chat, fullwidth, request

ROUTER = """
processors:
  - name: pick-model
    type: semantic-router
    match: {model: auto}
    routes:
      - model: support-assistant
        keywords: [refund, invoice]
        examples: [my invoice is wrong, reset my password, I was charged twice, cancel my plan,
                   the order never arrived, update my billing address]
      - model: coder
        keywords: [python, stack trace]
        examples: [write a function that sorts a list, fix this bug in my code,
                   why does my program crash, explain this compiler error,
                   how do I write a unit test for this class, refactor this method]
      - {model: general, default: true}
"""


def router(text: str = ROUTER) -> SemanticRouter:
    import yaml

    raw = yaml.safe_load(text)["processors"][0]
    return SemanticRouter(SemanticRouterSpec.model_validate(raw))


@pytest.mark.parametrize(
    ("prompt", "model", "via"),
    [
        ("I need a REFUND for last month", "support-assistant", "keyword"),
        ("here is my Python stack trace", "coder", "keyword"),
        ("my password reset email never arrived", "support-assistant", "classifier"),
        ("the program crashes when I call this function", "coder", "classifier"),
        ("why is the sky blue at noon", "general", "default"),
        ("¿Qué tiempo hace hoy en Madrid?", "general", "default"),
    ],
)
def test_routes(prompt: str, model: str, via: str) -> None:
    choice = router().choose(prompt)
    assert (choice.model, choice.via) == (model, via)


def test_keyword_with_most_hits_wins_and_matches_whole_words_only() -> None:
    chosen = router().choose("python python, and one invoice")
    assert chosen.model == "coder"
    assert router().choose("the pythonic invoiced sums").via != "keyword"


def test_unicode_keywords_fold_case_and_width() -> None:
    text = ROUTER.replace("keywords: [refund, invoice]", "keywords: [Rückerstattung]")
    assert router(text).choose("Ich möchte eine RÜCKERSTATTUNG").model == "support-assistant"
    assert router().choose(f"{fullwidth('REFUND')} please").via == "keyword"


def test_one_route_with_examples_and_a_default_without() -> None:
    single = """
processors:
  - name: pick-model
    type: semantic-router
    routes:
      - {model: support-assistant, examples: ["my invoice is wrong", "reset my password"]}
      - {model: general, default: true}
"""
    assert router(single).choose("my invoice total is wrong").model == "support-assistant"
    assert router(single).choose("tell me about volcanoes").model == "general"


def test_threshold_one_always_takes_the_default() -> None:
    strict = router(
        ROUTER.replace("match: {model: auto}", "match: {model: auto}\n    threshold: 1.0")
    )
    assert strict.choose("the program crashes when I call this function").model == "general"


def test_long_prompts_are_capped_and_still_routed() -> None:
    prompt = "fix this bug in my code, the program crashes. " * 2000
    assert router().choose(prompt).model == "coder"


async def test_sets_model_in_context_and_body_only_for_matching_requests() -> None:
    chain = chain_of(ROUTER)
    ctx = request(chat("I was charged twice on my card", model="auto"))
    await chain.run("pre-routing", ctx)
    assert ctx.model == "support-assistant" and ctx.body["model"] == "support-assistant"
    assert ctx.annotations["processor.pick-model"].startswith(
        "route model=support-assistant via=classifier"
    )
    pinned = request(chat("I was charged twice on my card", model="coder"))
    await chain.run("pre-routing", pinned)
    assert pinned.model == "coder" and "processor.pick-model" not in pinned.annotations


async def test_completions_prompt_is_classified() -> None:
    ctx = request(
        {"model": "auto", "prompt": "write a function that parses dates"},
        path="/v1/completions",
    )
    await chain_of(ROUTER).run("pre-routing", ctx)
    assert ctx.model == "coder"
