"""Workload data: seeded, HTTP-free streams of `WorkloadRequest`s for the client and simulators."""

from tokenway.bench.datasets.base import Dataset, DatasetError
from tokenway.bench.datasets.jsonl import JsonlPrompts, load_jsonl
from tokenway.bench.datasets.lengths import LengthDist, fixed
from tokenway.bench.datasets.lora import Adapter, LoraMix, tiered_adapters
from tokenway.bench.datasets.multi_turn import MultiTurn
from tokenway.bench.datasets.shared_prefix import SharedPrefix
from tokenway.bench.datasets.sharegpt import ShareGpt, load_sharegpt
from tokenway.bench.datasets.synthetic import Synthetic
from tokenway.bench.datasets.text import CHARS_PER_TOKEN, estimate_tokens, filler

__all__ = [
    "CHARS_PER_TOKEN",
    "Adapter",
    "Dataset",
    "DatasetError",
    "JsonlPrompts",
    "LengthDist",
    "LoraMix",
    "MultiTurn",
    "ShareGpt",
    "SharedPrefix",
    "Synthetic",
    "estimate_tokens",
    "filler",
    "fixed",
    "load_jsonl",
    "load_sharegpt",
    "tiered_adapters",
]
