from __future__ import annotations

import time

import pytest
from tests.conftest import free_port

from tokenway.bench.client import BenchClient, ClientOptions, Target
from tokenway.bench.workload import WorkloadRequest
from tokenway.sim.faults import FaultConfig
from tokenway.sim.server import DEFAULT_MODEL

from .conftest import faulty

CHAT = WorkloadRequest(0.0, messages=({"role": "user", "content": "ping " * 40},), max_tokens=12)
COMPLETION = WorkloadRequest(0.0, prompt="once upon a time " * 10, max_tokens=7)


def client(url: str, **options: object) -> BenchClient:
    return BenchClient(Target("sim", url), ClientOptions(**options), time.monotonic())  # type: ignore[arg-type]


async def test_streaming_chat_measures_tokens_and_usage(h100: str) -> None:
    async with client(h100) as bench:
        assert bench.model == DEFAULT_MODEL  # discovered from /v1/models
        record = await bench.send(CHAT, stage=0, scheduled=bench.now())
    assert record.ok, record.error_message
    assert record.output_tokens == 12 and len(record.token_times) == 12
    assert record.input_tokens > 40
    assert record.ttft is not None and 0 < record.ttft < record.latency
    assert record.tpot is not None and record.tpot > 0
    assert record.token_times == sorted(record.token_times)
    async with client(h100) as bench:
        again = await bench.send(CHAT, stage=0, scheduled=bench.now())
    assert again.cached_tokens > 0  # the simulator's prefix cache, reported in usage


async def test_streaming_completion_and_non_streaming(instant: str) -> None:
    async with client(instant) as bench:
        streamed = await bench.send(COMPLETION, 0, bench.now())
    async with client(instant, stream=False) as bench:
        whole = await bench.send(COMPLETION, 0, bench.now())
    assert streamed.ok and streamed.output_tokens == 7
    assert whole.ok and whole.output_tokens == 7 and whole.ttft is None


async def test_http_errors_are_recorded_by_kind(instant: str) -> None:
    async with client(instant, model="no-such-model") as bench:
        record = await bench.send(CHAT, 0, bench.now())
    assert record.error == "http_404" and record.status == 404
    assert "no-such-model" in record.error_message
    fleet = await faulty(FaultConfig(error_rate=1.0, error_status=503))
    try:
        async with client(fleet.urls[0]) as bench:
            record = await bench.send(CHAT, 0, bench.now())
        assert record.error == "http_503" and record.error_message == "Injected fault."
    finally:
        await fleet.stop()


async def test_timeouts_and_refused_connections_are_records_not_exceptions() -> None:
    fleet = await faulty(FaultConfig(spike_rate=1.0, spike_seconds=2.0))
    try:
        async with client(fleet.urls[0], timeout=0.2, model="m") as bench:
            record = await bench.send(CHAT, 0, bench.now())
        assert record.error == "timeout" and record.latency >= 0.2
    finally:
        await fleet.stop()
    async with client(f"http://127.0.0.1:{free_port()}", model="m") as bench:
        record = await bench.send(CHAT, 0, bench.now())
    assert record.error == "connection"


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_target_base_accepts_v1_suffix(suffix: str) -> None:
    assert Target("t", "http://h:1" + suffix).base == "http://h:1"
