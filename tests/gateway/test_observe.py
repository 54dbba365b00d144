from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from tokenway.gateway.observe import ResponseObserver


def sse(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


STREAM = (
    sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    + sse({"choices": [{"delta": {"content": "Hel"}}]})
    + sse({"choices": [{"delta": {"content": "lo"}}]})
    + sse({"choices": [{"delta": {"content": "!"}, "finish_reason": "stop"}]})
    + sse(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": 3,
                "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    )
    + b"data: [DONE]\n\n"
)


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_stream_split_anywhere_yields_same_events_and_usage(cuts: list[int]) -> None:
    observer = ResponseObserver(stream=True, started_at=0.0)
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    events: list[bytes] = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        events += observer.feed(STREAM[lo:hi], now=float(i + 1))
    assert observer.finish(now=99.0) == b""
    assert b"".join(events) == STREAM
    assert observer.usage is not None
    assert (observer.usage.prompt_tokens, observer.usage.completion_tokens) == (9, 3)
    assert observer.usage.cached_tokens == 4
    assert observer.chunks_with_output == 3
    assert observer.first_token_at is not None and observer.ttft == observer.first_token_at
    assert [ResponseObserver.is_usage_only(e) for e in events] == [False] * 4 + [True, False]


def test_interrupted_stream_is_counted_from_chunks() -> None:
    observer = ResponseObserver(stream=True, started_at=1.0)
    observer.feed(STREAM[: STREAM.index(b'data: {"choices": [{"delta": {"content": "!')], 2.0)
    usage = observer.counted_usage(prompt_estimate=11)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, 2)


def test_non_stream_usage_and_timing() -> None:
    observer = ResponseObserver(stream=False, started_at=1.0)
    body = json.dumps(
        {"choices": [{"text": "x"}], "usage": {"prompt_tokens": 2, "completion_tokens": 5}}
    )
    observer.feed(body.encode(), now=3.0)
    observer.finish(now=3.5)
    # A whole answer has no first-token time: its first byte comes after the last token.
    assert observer.ttft is None and observer.time_per_output_token() is None
    assert observer.usage is not None and observer.usage.total_tokens == 7


def test_events_separated_by_crlf_are_framed_as_they_arrive() -> None:
    observer = ResponseObserver(stream=True, started_at=0.0)
    first = b'data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\r\n\r\n'
    assert observer.feed(first + usage[:10], 1.0) == [first]
    assert observer.feed(usage[10:], 2.0) == [usage]
    assert ResponseObserver.is_usage_only(usage)
    assert observer.first_token_at == 1.0
    assert observer.usage is not None and observer.usage.completion_tokens == 1
