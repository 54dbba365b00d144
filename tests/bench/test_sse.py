from __future__ import annotations

import pytest

from tokenway.bench.sse import DONE, SseSplitter, parse_chunk


def test_splitter_joins_lines_split_across_reads() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b'data: {"a"') == []
    assert splitter.feed(b": 1}\r\n\r\nda") == [b'{"a": 1}']
    assert splitter.feed(b"ta: [DONE]\n\n: comment\n") == [DONE]


@pytest.mark.parametrize(
    ("payload", "tokens", "usage"),
    [
        (b'{"choices":[{"delta":{"content":"hi"}}]}', True, None),
        (b'{"choices":[{"delta":{"role":"assistant"}}]}', False, None),
        (b'{"choices":[{"text":"x","index":0}]}', True, None),
        (b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}', False, 2),
        (b'{"choices":[{"delta":{"content":""}}],"usage":null}', False, None),
        (b'{"choices":[{"delta":{"content": "\\"error\\": x"}}]}', True, None),
        (b'{"choices":[{"delta":{"content":null,"reasoning_content":"hm"}}]}', False, None),
        (b'{"choices":[{"delta":{},"finish_reason":"length"}]}', False, None),
        (b'{"choices":[{"text":"a","index":0}],"usage":{"completion_tokens":1}}', True, 1),
    ],
)
def test_parse_chunk(payload: bytes, tokens: bool, usage: int | None) -> None:
    chunk = parse_chunk(payload)
    assert chunk.tokens is tokens
    assert (chunk.usage or {}).get("completion_tokens") == usage


def test_parse_chunk_errors() -> None:
    assert parse_chunk(b'{"error":{"message":"boom"}}').error == "boom"
    assert parse_chunk(b'{"object":"error","message":"old vllm"}').error == "old vllm"
    with pytest.raises(ValueError):
        parse_chunk(b"{not json")
    with pytest.raises(ValueError):
        parse_chunk(b"[1]")
    with pytest.raises(ValueError):
        parse_chunk(b'{"choices":["x"]}')
