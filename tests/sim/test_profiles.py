"""Profiles against the published reference points (simulated time, not wall time)."""

from __future__ import annotations

import pytest

from tokenway.sim.profiles import PROFILES, get_profile
from tokenway.sim.step_time import StepCost, StepTimeModel


def _decode(profile: str, batch: int, context: int) -> float:
    cost = StepCost(batch, batch, batch * (context + 0.5), batch * (context + 1))
    return StepTimeModel(get_profile(profile)).seconds(cost)


def test_h100_decode_steps_match_published_itl() -> None:
    assert 0.008 <= _decode("h100-8b", 1, 256) <= 0.015  # 10-15 ms published, BLIS ~8 ms
    assert 0.010 <= _decode("h100-8b", 64, 1000) <= 0.018  # BLIS ~13 ms


def test_h100_ttft_for_a_256_token_prompt_is_in_the_published_range() -> None:
    profile = get_profile("h100-8b")
    step = StepTimeModel(profile).seconds(StepCost(1, 256, 256 * 128, 256))
    assert 0.040 <= step + profile.api_overhead_s <= 0.120


def test_faster_memory_decodes_faster_and_small_gpus_hold_less() -> None:
    assert _decode("h200-8b", 32, 1000) < _decode("h100-8b", 32, 1000) < _decode("l4-8b", 32, 1000)
    assert PROFILES["l4-8b"].num_gpu_blocks < PROFILES["h100-8b"].num_gpu_blocks


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_kv_cache_holds_a_full_length_request(name: str) -> None:
    profile = PROFILES[name]
    assert profile.num_gpu_blocks * profile.block_size >= profile.max_model_len


def test_instant_profile_takes_no_time() -> None:
    assert _decode("instant", 64, 1000) == 0.0
    with pytest.raises(ValueError, match="known: h100-8b"):
        get_profile("nope")
