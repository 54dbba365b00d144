"""The real-time server through real clients: the OpenAI SDK, aiohttp, prometheus' parser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tokenway.sim import tokenizer
from tokenway.sim.engine import EngineCore
from tokenway.sim.faults import FaultConfig
from tokenway.sim.fleet import Fleet, start_fleet
from tokenway.sim.profiles import get_profile
from tokenway.sim.stats import ITL_BUCKETS, TTFT_BUCKETS

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
_JSON = "application/json"


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    fleet = await start_fleet(2, loras=("sql-lora", "chat-lora"), max_loras=1, profile="h100-8b")
    try:
        yield fleet
    finally:
        await fleet.stop()


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)


async def test_chat_completion_non_streaming_reports_usage_and_cached_tokens(fleet: Fleet) -> None:
    async with _client(fleet.urls[0]) as client:
        messages = [{"role": "user", "content": "Tell me about the sea. " * 20}]
        first = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=12)
        again = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=12)
    assert first.choices[0].finish_reason == "length"
    assert first.usage is not None and again.usage is not None
    assert first.usage.completion_tokens == 12
    assert first.choices[0].message.content == again.choices[0].message.content
    assert len(first.choices[0].message.content or "") == 48
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert again.usage.prompt_tokens_details is not None
    assert (
        again.usage.prompt_tokens_details.cached_tokens
        == (first.usage.prompt_tokens - 1) // 16 * 16
    )


async def test_streaming_chat_ends_with_usage_chunk(fleet: Fleet) -> None:
    async with _client(fleet.urls[1]) as client:
        stream = await client.chat.completions.create(
            model="sql-lora",
            messages=[{"role": "user", "content": "SELECT"}],
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) == 28
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    assert all(c.model == "sql-lora" for c in chunks)


async def test_completions_stream_and_stop_strings(fleet: Fleet) -> None:
    async with _client(fleet.urls[0]) as client:
        full = await client.completions.create(model=MODEL, prompt="Once", max_tokens=40)
        text = full.choices[0].text
        stop_at = text[20:28]
        stopped = await client.completions.create(
            model=MODEL, prompt="Once", max_tokens=40, stop=[stop_at]
        )
        stream = await client.completions.create(
            model=MODEL, prompt="Once", max_tokens=5, stream=True
        )
        streamed = "".join([c.choices[0].text async for c in stream if c.choices])
    assert stopped.choices[0].finish_reason == "stop"
    assert text.startswith(stopped.choices[0].text) and stop_at not in stopped.choices[0].text
    assert streamed == text[:20]


async def test_without_max_tokens_the_answer_ends_with_stop(fleet: Fleet) -> None:
    async with _client(fleet.urls[0]) as client:
        answer = await client.completions.create(model=MODEL, prompt="Why?")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and 16 <= answer.usage.completion_tokens < 128


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "Invalid JSON"),
        (b'{"model": "nope", "prompt": "x"}', 404, "does not exist"),
        (b'{"prompt": "x", "max_tokens": -5}', 400, "at least 1"),
        (b'{"prompt": "x", "max_tokens": 100000000}', 400, "maximum context length"),
        (b'{"prompt": 12}', 400, "'prompt'"),
        (b'{"prompt": "' + b"word " * 140000 + b'"}', 400, "maximum context length"),
    ],
)
async def test_bad_input_gets_vllm_error_bodies_and_server_keeps_serving(
    fleet: Fleet, body: bytes, status: int, fragment: str
) -> None:
    url = fleet.urls[0]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/completions", data=body) as response:
            assert response.status == status
            error = (await response.json())["error"]
        assert fragment in error["message"] and error["code"] == status
        async with http.post(f"{url}/v1/completions", json={"prompt": "ok", "max_tokens": 1}) as ok:
            assert ok.status == 200


async def test_models_and_runtime_lora_loading(fleet: Fleet) -> None:
    url = fleet.urls[0]
    async with _client(url) as client, aiohttp.ClientSession() as http:
        before = [m.id async for m in client.models.list()]
        async with http.post(
            f"{url}/v1/load_lora_adapter", json={"lora_name": "new", "lora_path": "/x"}
        ) as response:
            assert response.status == 200
        async with http.post(
            f"{url}/v1/load_lora_adapter", json={"lora_name": "new", "lora_path": "/x"}
        ) as response:
            assert response.status == 400
        reply = await client.completions.create(model="new", prompt="hi", max_tokens=2)
        async with http.post(
            f"{url}/v1/unload_lora_adapter", json={"lora_name": "new"}
        ) as response:
            assert response.status == 200
        async with http.post(
            f"{url}/v1/unload_lora_adapter", json={"lora_name": "new"}
        ) as response:
            assert response.status == 404
        after = [m.id async for m in client.models.list()]
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="new", prompt="hi", max_tokens=2)
    assert before == [MODEL, "sql-lora", "chat-lora"]
    assert reply.model == "new" and after == before


async def test_tokenize_and_health(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fleet.urls[0]}/tokenize", json={"prompt": "abcdefgh"}) as response:
            body = await response.json()
        async with http.get(f"{fleet.urls[0]}/health") as health:
            assert health.status == 200
    assert body["count"] == 2 and len(body["tokens"]) == 2


async def test_metrics_parse_with_vllm_names_labels_and_buckets(fleet: Fleet) -> None:
    url = fleet.urls[0]
    async with _client(url) as client:
        for _ in range(2):
            await client.completions.create(model=MODEL, prompt="metrics " * 40, max_tokens=5)
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))): s.value
        for f in families.values()
        for s in f.samples
        if "le" not in s.labels
    }
    base = (("engine", "0"), ("model_name", MODEL))
    assert samples[("vllm:num_requests_running", base)] == 0
    assert samples[("vllm:num_requests_waiting", base)] == 0
    assert 0 <= samples[("vllm:kv_cache_usage_perc", base)] <= 1
    assert samples[("vllm:generation_tokens_total", base)] == 10
    assert samples[("vllm:prefix_cache_queries_total", base)] == 2 * 80
    assert samples[("vllm:prefix_cache_hits_total", base)] == 64
    success = tuple(sorted((*base, ("finished_reason", "length"))))
    assert samples[("vllm:request_success_total", success)] == 2
    assert samples[("vllm:time_to_first_token_seconds_count", base)] == 2
    assert samples[("vllm:inter_token_latency_seconds_count", base)] == 8
    assert families["vllm:time_to_first_token_seconds"].type == "histogram"
    bounds = [
        float(s.labels["le"])
        for s in families["vllm:time_to_first_token_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert bounds[:-1] == list(TTFT_BUCKETS)
    itl_bounds = [
        float(s.labels["le"])
        for s in families["vllm:inter_token_latency_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert itl_bounds[:-1] == list(ITL_BUCKETS)
    info = next(s for s in families["vllm:cache_config_info"].samples)
    assert info.labels["block_size"] == "16" and int(info.labels["num_gpu_blocks"]) > 0
    lora = next(s for s in families["vllm:lora_requests_info"].samples)
    assert lora.labels["max_lora"] == "1" and lora.labels["running_lora_adapters"] == ""


async def test_metrics_show_running_and_waiting_while_busy() -> None:
    fleet = await start_fleet(1, loras=("a", "b"), max_loras=1)
    try:
        url = fleet.urls[0]
        async with _client(url) as client, aiohttp.ClientSession() as http:
            stream_a = await client.completions.create(
                model="a", prompt="x", max_tokens=400, stream=True
            )
            stream_b = await client.completions.create(
                model="b", prompt="y", max_tokens=2, stream=True
            )
            await stream_a.__anext__()
            async with http.get(f"{url}/metrics") as response:
                text = await response.text()
            await stream_a.close()
            await stream_b.close()
    finally:
        await fleet.stop()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    lora = next(iter(families["vllm:lora_requests_info"].samples)).labels
    assert lora["running_lora_adapters"] == "a" and lora["waiting_lora_adapters"] == "b"
    assert next(iter(families["vllm:num_requests_waiting"].samples)).value == 1


async def test_a_client_that_disconnects_mid_stream_frees_its_slot(fleet: Fleet) -> None:
    url = fleet.urls[0]
    engine = fleet.servers[0].engine
    async with aiohttp.ClientSession() as http:
        body = {"prompt": "long answer please", "max_tokens": 5000, "stream": True}
        async with http.post(f"{url}/v1/completions", json=body) as response:
            for _ in range(3):
                await response.content.readline()
            assert len(engine.running) == 1
        for _ in range(200):
            if not engine.has_work:
                break
            await asyncio.sleep(0.02)
    assert not engine.has_work
    assert engine.kv.pool.num_free == engine.kv.pool.num_blocks


@pytest.fixture
async def instant() -> AsyncIterator[str]:
    fleet = await start_fleet(1, profile="instant")
    try:
        yield fleet.urls[0]
    finally:
        await fleet.stop()


async def _wait_idle(engine: EngineCore) -> None:
    for _ in range(50):
        if not engine.has_work:
            return
        await asyncio.sleep(0.02)


def _events(raw: bytes) -> list[dict[str, Any]]:
    frames = [line.removeprefix(b"data: ") for line in raw.split(b"\n\n") if line]
    assert frames[-1] == b"[DONE]"
    return [json.loads(frame) for frame in frames[:-1]]


async def _answer(
    http: aiohttp.ClientSession, url: str, chat: bool, body: dict[str, Any]
) -> tuple[str, str, str | None, int]:
    """(text, finish_reason, stop_reason, completion_tokens), streamed or not as `body` says."""
    path, prompt = (
        ("chat/completions", {"messages": [{"role": "user", "content": "Once"}]})
        if chat
        else ("completions", {"prompt": "Once"})
    )
    options = {"stream_options": {"include_usage": True}} if body.get("stream") else {}
    async with http.post(f"{url}/v1/{path}", json={**prompt, **body, **options}) as response:
        assert response.status == 200
        raw = await response.read()
    if not body.get("stream"):
        answer = json.loads(raw)
        choice = answer["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        return (
            text,
            choice["finish_reason"],
            choice["stop_reason"],
            answer["usage"]["completion_tokens"],
        )
    events = _events(raw)
    choices = [e["choices"][0] for e in events if e["choices"]]
    text = "".join((c["delta"].get("content") or "") if chat else c["text"] for c in choices)
    assert all(c.get("stop_reason") is None for c in choices[:-1])
    last = choices[-1]
    return (
        text,
        last["finish_reason"],
        last["stop_reason"],
        events[-1]["usage"]["completion_tokens"],
    )


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("stream", [False, True])
async def test_stop_strings_end_the_text_right_before_them(
    instant: str, chat: bool, stream: bool
) -> None:
    async with aiohttp.ClientSession() as http:
        full, _, _, _ = await _answer(http, instant, chat, {"max_tokens": 40})
        stop = full[22:27]
        at = full.find(stop)
        body = {"max_tokens": 40, "stop": ["never there", stop], "stream": stream}
        text, reason, stop_reason, tokens = await _answer(http, instant, chat, body)
        first = {"max_tokens": 40, "stop": full[:3], "stream": stream}
        opening = await _answer(http, instant, chat, first)
        late = {"max_tokens": 10, "stop": full[60:68], "stream": stream}
        beyond = await _answer(http, instant, chat, late)
    assert (text, reason, stop_reason) == (full[:at], "stop", stop)
    assert tokens == -(-(at + len(stop)) // 4)
    assert opening == ("", "stop", full[:3], 1)
    assert full[60:68] not in full[:40]
    assert beyond == (full[:40], "length", None, 10)


async def test_without_max_tokens_a_full_context_ends_with_length(instant: str) -> None:
    room = 3
    prompt = "abcd" * (get_profile("instant").max_model_len - room)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{instant}/v1/completions", json={"prompt": prompt}) as response,
    ):
        answer = await response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == room


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/completions", b'{"prompt": "a\\ud800b", "max_tokens": 2}', 200),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 2}',
            200,
        ),
        ("/tokenize", b'{"prompt": "a\\ud800b"}', 200),
        ("/v1/completions", b"[" * 100_000, 400),
        ("/v1/chat/completions", b'{"messages": [{"content": 5}]}', 400),
        ("/v1/completions", b'{"prompt": "x", "stream": "maybe"}', 400),
        ("/v1/completions", b'{"prompt": "x", "stream_options": {}, "stream": 1}', 200),
        ("/v1/completions", b'{"prompt": "x", "stream_options": {"include_usage": 1}}', 400),
        ("/v1/completions", b'{"prompt": "x", "temperature": "hot"}', 400),
    ],
)
async def test_odd_bodies_get_json_answers_and_the_server_keeps_serving(
    instant: str, path: str, body: bytes, status: int
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{instant}{path}", data=body) as response:
            assert response.status == status
            assert response.content_type in (_JSON, "text/event-stream")
            await response.read()
        async with http.post(f"{instant}/v1/completions", json={"prompt": "ok"}) as ok:
            assert ok.status == 200


async def test_lone_surrogates_tokenize_like_the_tokenizer_counts(instant: str) -> None:
    raw = b'{"prompt": "a\\ud800b"}'
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{instant}/tokenize", data=raw) as response,
    ):
        body = await response.json()
    assert body["count"] == len(body["tokens"]) == tokenizer.count("a\ud800b") == 2


async def test_stream_no_answers_with_one_json_body(instant: str) -> None:
    body = {"prompt": "x", "max_tokens": 3, "stream": "no"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{instant}/v1/completions", json=body) as response,
    ):
        assert response.content_type == _JSON
        answer = await response.json()
    assert answer["usage"]["completion_tokens"] == 3


async def test_a_client_that_hangs_up_on_a_non_streaming_request_frees_its_slot(
    fleet: Fleet,
) -> None:
    engine = fleet.servers[0].engine
    body = {"model": "sql-lora", "prompt": "long answer please", "max_tokens": 5000}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.post(f"{fleet.urls[0]}/v1/completions", json=body)
        assert engine.has_work
    await _wait_idle(engine)
    assert not engine.has_work and not engine.loras.running
    assert engine.kv.pool.num_free == engine.kv.pool.num_blocks


async def test_a_crash_drops_every_open_connection() -> None:
    fleet = await start_fleet(1, faults=[FaultConfig(crash_after=2)])
    url, engine = fleet.urls[0], fleet.servers[0].engine
    long = {"prompt": "long answer please", "max_tokens": 5000, "stream": True}
    short = {"prompt": "x", "max_tokens": 2}
    try:
        async with (
            aiohttp.ClientSession() as http,
            aiohttp.ClientSession() as other,
            http.post(f"{url}/v1/completions", json=long) as stream,
        ):
            await stream.content.readline()
            async with other.post(f"{url}/v1/completions", json=short) as ok:
                assert ok.status == 200
            with pytest.raises(aiohttp.ClientConnectionError):
                async with other.post(f"{url}/v1/completions", json=short) as crashing:
                    await crashing.read()
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
                async with asyncio.timeout(2):
                    await stream.read()
        await _wait_idle(engine)
        assert not engine.has_work
    finally:
        await fleet.stop()
