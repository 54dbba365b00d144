"""The embedded default: a platform file for the simulated fleet that `tokenway up` starts."""

from __future__ import annotations

from collections.abc import Sequence

from tokenway.config.platform import PlatformConfig

BASE_PUBLIC_NAME = "llama-3.1-8b-instruct"


def embedded_platform(
    urls: Sequence[str], base_model: str, adapters: Sequence[str], port: int
) -> PlatformConfig:
    """One pool of simulated vLLM replicas: the base model, each adapter, a sheddable batch tier."""
    models: list[dict[str, object]] = [
        {"name": BASE_PUBLIC_NAME, "pool": "sim", "model": base_model},
        {"name": "nightly-batch", "pool": "sim", "model": base_model, "priority": -1},
    ]
    models += [{"name": adapter, "pool": "sim", "adapter": adapter} for adapter in adapters]
    return PlatformConfig.model_validate(
        {
            "gateway": {"listen": f"127.0.0.1:{port}"},
            "pools": [
                {
                    "name": "sim",
                    "engine": "vllm",
                    "endpoints": list(urls),
                    "scheduler": {"profile": "tokenway"},
                }
            ],
            "models": models,
        }
    )
