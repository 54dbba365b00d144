"""How long one engine step takes: additive roofline terms in the BLIS shape.

step = per-step + per-layer + per-sequence overheads
     + FLOPs / (peak x compute efficiency)            (prefill is compute-bound)
     + (weights + KV bytes touched) / (bandwidth x memory efficiency)  (decode is memory-bound)
     + adapter loads.

Every term is affine in the KV tokens read, so a stretch of decode-only steps (each one token
longer per sequence) has durations in arithmetic progression; the virtual-time runner uses that
to jump over many steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenway.sim.profiles import Profile


@dataclass(frozen=True, slots=True)
class StepCost:
    """The work of one step, summed over its sequences."""

    num_seqs: int
    new_tokens: int
    """Tokens computed this step (prefill chunks plus one per decode)."""
    attention_pairs: float
    """Sum over sequences of new tokens x (context before + half the new tokens)."""
    kv_tokens: int
    """KV entries read or written (context plus new tokens, per sequence)."""
    lora_loads: int = 0


class StepTimeModel:
    """Converts step work into seconds for one profile; zero for the instant profile."""

    def __init__(self, profile: Profile) -> None:
        self.instant = profile.instant
        model, hw = profile.model, profile.hardware
        flops_rate = hw.peak_flops * profile.compute_efficiency
        bytes_rate = hw.bandwidth * profile.memory_efficiency
        self._fixed = (
            profile.step_overhead_s
            + profile.layer_overhead_s * model.layers
            + model.weight_bytes / bytes_rate
        )
        self._per_seq = profile.seq_overhead_s
        self._per_token = 2 * model.params / flops_rate
        self._per_pair = 4 * model.layers * model.hidden / flops_rate
        self._per_kv = model.kv_bytes_per_token / bytes_rate
        self._lora_load = profile.lora_load_s

    def seconds(self, cost: StepCost) -> float:
        if self.instant or cost.num_seqs == 0:
            return 0.0
        return (
            self._fixed
            + self._per_seq * cost.num_seqs
            + self._per_token * cost.new_tokens
            + self._per_pair * cost.attention_pairs
            + self._per_kv * cost.kv_tokens
            + self._lora_load * cost.lora_loads
        )

    def decode_increment(self, num_seqs: int) -> float:
        """Growth of a decode-only step's duration per step (every context grows by one)."""
        if self.instant:
            return 0.0
        return num_seqs * (self._per_pair + self._per_kv)
