"""Hardware x model profiles: every number the step-time model and the engine limits use.

Sources (see docs/simulator.md for the calibration table):
- GPU peaks: NVIDIA datasheets. H100 SXM 989.5 TFLOP/s dense BF16, 3.35 TB/s HBM3, 80 GB;
  H200 SXM same compute, 4.8 TB/s HBM3e, 141 GB; L4 121 TFLOP/s dense BF16, 300 GB/s GDDR6, 24 GB.
- Llama-3.1-8B shape: 8.03e9 parameters, 32 layers, hidden 4096, 8 KV heads of 128 dims (GQA),
  BF16, so KV = 2 (K and V) x 32 x 8 x 128 x 2 bytes = 128 KiB per token (model config.json).
- Engine limits: vLLM V1 defaults, 8192 batched tokens and 1024 sequences on GPUs with 70 GiB
  or more, otherwise 2048 / 256; 16-token KV blocks; gpu_memory_utilization 0.9.
- Overheads: the BLIS latency-model guide (about 32 us per layer, 4 us per sequence, 126 us per
  step, 15.6 ms per request of API and queueing overhead) and llm-d-inference-sim's reference
  profile (prefill overhead 30 ms, ITL 12 +/- 2 ms at batch 1 on H100).
- Efficiencies: achieved fraction of peak, fitted to the published points: 0.6 of peak bandwidth
  for decode reads gives about 9 ms per step at batch 1 (published 10-15 ms, BLIS ~8 ms) and
  about 15 ms at batch 64 with 1k context (BLIS ~13 ms); 0.35 of peak FLOP/s for prefill with a
  30 ms per-request overhead (llm-d's prefill overhead) puts TTFT for a 256-token prompt at about
  50 ms, just under the published 60-120 ms (which include client-side HTTP time).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Hardware:
    name: str
    peak_flops: float
    """Dense BF16 FLOP/s."""
    bandwidth: float
    """HBM (or GDDR) bytes/s."""
    memory: float
    """Device memory in bytes."""


@dataclass(frozen=True, slots=True)
class ModelShape:
    name: str
    params: float
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2

    @property
    def weight_bytes(self) -> float:
        return self.params * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True, slots=True)
class Profile:
    """One simulated deployment: a model on a GPU with vLLM's limits and measured overheads."""

    name: str
    description: str
    hardware: Hardware
    model: ModelShape
    compute_efficiency: float = 0.35
    memory_efficiency: float = 0.6
    step_overhead_s: float = 126e-6
    layer_overhead_s: float = 32e-6
    seq_overhead_s: float = 4e-6
    api_overhead_s: float = 0.030
    """Per request, before it reaches the engine's queue (HTTP, tokenization, scheduling)."""
    lora_load_s: float = 0.025
    """Loading an adapter that is not resident in a GPU slot (rank-16 8B adapter from host)."""
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 1024
    max_model_len: int = 131072
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    activation_reserve: float = 2 * GIB
    """Memory vLLM keeps for activations and CUDA graphs before sizing the KV cache."""
    num_gpu_blocks_override: int | None = None
    instant: bool = False
    """Steps take no time: answers come back as fast as the server can write them."""

    @property
    def num_gpu_blocks(self) -> int:
        if self.num_gpu_blocks_override is not None:
            return self.num_gpu_blocks_override
        free = (
            self.hardware.memory * self.gpu_memory_utilization
            - self.model.weight_bytes
            - self.activation_reserve
        )
        return max(1, int(free // (self.model.kv_bytes_per_token * self.block_size)))


LLAMA_8B = ModelShape(
    name="llama-3.1-8b", params=8.03e9, layers=32, hidden=4096, kv_heads=8, head_dim=128
)
H100 = Hardware("H100-SXM-80GB", peak_flops=989.5e12, bandwidth=3.35e12, memory=80e9)
H200 = Hardware("H200-SXM-141GB", peak_flops=989.5e12, bandwidth=4.8e12, memory=141e9)
L4 = Hardware("L4-24GB", peak_flops=121e12, bandwidth=300e9, memory=24e9)

PROFILES: dict[str, Profile] = {
    "h100-8b": Profile(
        name="h100-8b",
        description="Llama-3.1-8B BF16 on one H100 SXM",
        hardware=H100,
        model=LLAMA_8B,
    ),
    "h200-8b": Profile(
        name="h200-8b",
        description="Llama-3.1-8B BF16 on one H200 SXM",
        hardware=H200,
        model=LLAMA_8B,
    ),
    "l4-8b": Profile(
        name="l4-8b",
        description="Llama-3.1-8B BF16 on one L4 (small GPU: small KV cache, 2048/256 limits)",
        hardware=L4,
        model=LLAMA_8B,
        max_num_batched_tokens=2048,
        max_num_seqs=256,
        max_model_len=16384,
        # No published vLLM point for this pair; 0.8 of the 300 GB/s puts single-stream
        # decode at about 15 tokens/s, what the weights-over-bandwidth bound implies for a
        # GDDR6 card running large sequential reads.
        memory_efficiency=0.8,
        activation_reserve=1.5 * GIB,
    ),
    "instant": Profile(
        name="instant",
        description="No step time: a backend that answers as fast as the server can (benchmarks)",
        hardware=H200,
        model=LLAMA_8B,
        api_overhead_s=0.0,
        lora_load_s=0.0,
        instant=True,
    ),
}
DEFAULT_PROFILE = "h100-8b"
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def get_profile(name: str) -> Profile:
    """The named profile; a ValueError lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
