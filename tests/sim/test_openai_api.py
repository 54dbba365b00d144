"""Request validation and stop strings of the OpenAI-compatible API, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tokenway.sim import tokenizer
from tokenway.sim.openai_api import (
    ApiError,
    ChunkWriter,
    Generation,
    completion_body,
    parse_generation,
    parse_json,
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
MAX_MODEL_LEN = 4096


def _parse(body: dict[str, Any], chat: bool = False) -> Generation:
    return parse_generation(body, chat, MODEL, {}, MAX_MODEL_LEN)


def _rejected(body: dict[str, Any], chat: bool = False) -> ApiError:
    with pytest.raises(ApiError) as caught:
        _parse(body, chat)
    assert caught.value.status == 400
    return caught.value


def _answer(prompt: str, tokens: int) -> str:
    return tokenizer.filler(_parse({"prompt": prompt}).seed, 0, tokens).decode()


def test_deeply_nested_json_is_a_400() -> None:
    with pytest.raises(ApiError, match="Invalid JSON body") as caught:
        parse_json(b"[" * 100_000)
    assert caught.value.status == 400


@pytest.mark.parametrize("value", ["no", "false", "0", 0, None])
def test_stream_accepts_what_pydantic_reads_as_false(value: object) -> None:
    assert not _parse({"prompt": "x", "stream": value}).stream


@pytest.mark.parametrize("value", ["yes", "true", "1", 1, True])
def test_stream_accepts_what_pydantic_reads_as_true(value: object) -> None:
    assert _parse({"prompt": "x", "stream": value}).stream


@pytest.mark.parametrize("value", ["maybe", 2, [], {}])
def test_stream_rejects_other_values(value: object) -> None:
    assert _rejected({"prompt": "x", "stream": value}).param == "stream"


def test_stream_options_must_be_an_object_and_need_stream() -> None:
    bad_type = _rejected({"prompt": "x", "stream": True, "stream_options": "yes"})
    assert bad_type.param == "stream_options"
    without_stream = _rejected({"prompt": "x", "stream_options": {"include_usage": True}})
    assert without_stream.message == "Stream options can only be defined when `stream=True`."
    gen = _parse({"prompt": "x", "stream": "true", "stream_options": {"include_usage": True}})
    assert gen.stream and gen.include_usage


@pytest.mark.parametrize("content", [5, True, {"text": "hi"}])
def test_chat_content_must_be_a_string_a_list_or_null(content: object) -> None:
    error = _rejected({"messages": [{"role": "user", "content": content}]}, chat=True)
    assert error.param == "messages"


@pytest.mark.parametrize("content", ["hi", [{"type": "text", "text": "hi"}], None])
def test_chat_content_accepts_strings_parts_and_null(content: object) -> None:
    assert _parse({"messages": [{"role": "user", "content": content}]}, chat=True)


@pytest.mark.parametrize("key", ["temperature", "top_p"])
@pytest.mark.parametrize("value", ["hot", True, [0.5]])
def test_sampling_parameters_must_be_numbers(key: str, value: object) -> None:
    assert _rejected({"prompt": "x", key: value}).param == key
    assert _parse({"prompt": "x", key: 0.5}) and _parse({"prompt": "x", key: None})


def test_null_max_completion_tokens_falls_back_to_max_tokens() -> None:
    messages = [{"role": "user", "content": "hi"}]
    body = {"messages": messages, "max_completion_tokens": None, "max_tokens": 3}
    gen = _parse(body, chat=True)
    assert gen.max_tokens == gen.requested_max_tokens == 3
    both = _parse({**body, "max_completion_tokens": 5}, chat=True)
    assert both.max_tokens == 5


def test_without_max_tokens_a_full_context_ends_with_length() -> None:
    prompt = "abcd" * (MAX_MODEL_LEN - 3)
    gen = _parse({"prompt": prompt})
    assert gen.max_tokens == 3 and gen.finish_reason_at_max == "length"


def test_the_stop_string_completed_by_the_earliest_token_wins() -> None:
    text = _answer("Once", 40)
    starts_earlier = text[40:60]
    ends_earlier = text[48:56]
    assert text.find(starts_earlier) == 40 and text.find(ends_earlier) == 48
    gen = _parse({"prompt": "Once", "max_tokens": 40, "stop": [starts_earlier, ends_earlier]})
    assert gen.stop == ends_earlier and gen.max_tokens == 14
    assert gen.finish_reason_at_max == "stop"
    assert gen.visible(tokenizer.filler(gen.seed, 0, 14), 0).decode() == text[:48]


def test_streamed_frames_are_clipped_at_the_stop_string() -> None:
    text = _answer("Once", 40)
    gen = _parse({"prompt": "Once", "max_tokens": 40, "stop": text[22:27]})
    assert gen.max_tokens == 7
    frames = [gen.visible(tokenizer.filler(gen.seed, i, 1), i * 4) for i in range(7)]
    assert b"".join(frames).decode() == text[:22] and frames[-2:] == [text[20:22].encode(), b""]


def test_stop_reason_is_the_stop_string_only_when_it_ended_the_answer() -> None:
    text = _answer("Once", 40)
    gen = _parse({"prompt": "Once", "max_tokens": 40, "stop": text[22:27]})
    use = {"prompt_tokens": 1}
    stopped = json.loads(completion_body(gen, "cmpl-0", 0, "", "stop", use))
    aborted = json.loads(completion_body(gen, "cmpl-0", 0, "", "abort", use))
    assert stopped["choices"][0]["stop_reason"] == text[22:27]
    assert aborted["choices"][0]["stop_reason"] is None
    chunk = ChunkWriter(gen, "cmpl-0", 0).finish("stop").removeprefix(b"data: ")
    assert json.loads(chunk)["choices"][0]["stop_reason"] == text[22:27]
