"""InferencePool + its pods -> the pool's endpoint URLs and engine; pure, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tokenway.kube.objects import ENGINE_LABEL

DEFAULT_ENGINE = "vllm"


@dataclass(frozen=True, slots=True)
class PodView:
    """What endpoint selection needs from a Pod."""

    name: str
    labels: Mapping[str, str]
    ip: str | None
    ready: bool
    terminating: bool


@dataclass(frozen=True, slots=True)
class PoolEndpoints:
    urls: tuple[str, ...]
    engine: str


def pod_view(pod: Any) -> PodView:
    """From a lightkube Pod: ready means the Ready condition is True."""
    status = pod.status
    conditions = (status.conditions or []) if status is not None else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return PodView(
        name=pod.metadata.name,
        labels=dict(pod.metadata.labels or {}),
        ip=status.podIP if status is not None else None,
        ready=ready,
        terminating=pod.metadata.deletionTimestamp is not None,
    )


def _url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def pool_endpoints(pool_spec: Mapping[str, Any], pods: Iterable[PodView]) -> PoolEndpoints:
    """Ready, non-terminating pods matching spec.selector.matchLabels, times spec.targetPorts.

    Several target ports are data-parallel ranks of one pod: each is its own endpoint. The engine
    is the pods' engine-type label (the most common one if they disagree), vllm by default.
    """
    selector = dict(pool_spec.get("selector", {}).get("matchLabels", {}))
    ports = sorted({int(p["number"]) for p in pool_spec.get("targetPorts", [])})
    chosen = [
        pod
        for pod in pods
        if selector
        and all(pod.labels.get(k) == v for k, v in selector.items())
        and pod.ready
        and not pod.terminating
        and pod.ip
    ]
    urls = tuple(sorted(_url(pod.ip, port) for pod in chosen if pod.ip for port in ports))
    engines = Counter(pod.labels.get(ENGINE_LABEL, DEFAULT_ENGINE) for pod in chosen)
    engine = min(engines, key=lambda e: (-engines[e], e)) if engines else DEFAULT_ENGINE
    return PoolEndpoints(urls, engine)
