"""Building blocks shared by the renderers: the manifest type, names, labels and metadata."""

from __future__ import annotations

import re
from typing import Any

Manifest = dict[str, Any]
"""One Kubernetes object as plain data, in the key order it is written."""

PART_OF = "tokenway"
POOL_LABEL = "tokenway.io/pool"
DEPLOYMENT_LABEL = "tokenway.io/deployment"
ENGINE_LABEL = "inference.networking.k8s.io/engine-type"


def port_of(listen: str) -> int:
    """The port of a host:port listen address."""
    return int(listen.rpartition(":")[2])


def dns_name(text: str, limit: int = 63) -> str:
    """A DNS label from free text: lowercase, runs of other characters become '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-")
    return name or "x"


def quantity(size: int) -> str:
    """A byte count as the shortest exact binary Kubernetes quantity (80Gi, 512Mi, 1000)."""
    for suffix, scale in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size and size % scale == 0:
            return f"{size // scale}{suffix}"
    return str(size)


def labels(component: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": PART_OF,
        **extra,
    }


def meta(name: str, namespace: str | None, object_labels: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name}
    if namespace is not None:
        data["namespace"] = namespace
    data["labels"] = dict(object_labels)
    return data


def manifest(api_version: str, kind: str, metadata: dict[str, Any], **body: Any) -> Manifest:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}
