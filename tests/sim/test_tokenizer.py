"""The deterministic tokenizer and chat template."""

from __future__ import annotations

import json

from tokenway.sim import tokenizer


def test_same_text_same_tokens_four_bytes_each() -> None:
    assert tokenizer.encode("hello world!") == tokenizer.encode("hello world!")
    assert tokenizer.count("hello world!") == 3 == len(tokenizer.encode("hello world!")) // 4
    assert tokenizer.count("héllo") == 2
    assert tokenizer.token_ids(b"abcdabcd") == [int.from_bytes(b"abcd", "little")] * 2


def test_chat_history_shares_the_tokens_of_the_earlier_turn() -> None:
    first = [{"role": "user", "content": "What is the capital of France?"}]
    answer = tokenizer.decode(tokenizer.filler(7, 0, 9))
    second = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "Why?"}]
    earlier = tokenizer.encode(tokenizer.render_chat(first)[: -len("<|assistant|>\n  ")])
    assert tokenizer.encode(tokenizer.render_chat(second)).startswith(earlier)


def test_filler_is_deterministic_ascii_that_needs_no_json_escaping() -> None:
    text = tokenizer.filler(3, 0, 500)
    assert text == tokenizer.filler(3, 0, 200) + tokenizer.filler(3, 200, 300)
    assert len(text) == 2000
    decoded = text.decode()
    assert text.isascii() and json.dumps(decoded) == f'"{decoded}"'
