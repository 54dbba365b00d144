"""Kueue objects for each team's batch and training jobs: flavors, queues and priorities."""

from __future__ import annotations

from typing import Any

from tokenway.config.queues import QueueSpec
from tokenway.kube.objects import Manifest, dns_name, labels, manifest, meta, quantity

API = "kueue.x-k8s.io/v1beta2"
CPU_MEMORY_FLAVOR = "default-flavor"


def cluster_queue_name(queue: QueueSpec) -> str:
    return f"{queue.team}-cq"


def priority_class_name(queue: QueueSpec) -> str:
    return f"{queue.team}-priority"


def resource_flavors(queues: list[QueueSpec]) -> list[Manifest]:
    names = sorted({dns_name(f) for q in queues for f in q.gpu_quota} | {CPU_MEMORY_FLAVOR})
    return [manifest(API, "ResourceFlavor", meta(n, None, labels("queue", n))) for n in names]


def cluster_queue(queue: QueueSpec) -> Manifest:
    gpu_flavors = []
    for flavor, count in sorted(queue.gpu_quota.items()):
        resource: dict[str, Any] = {"name": queue.gpu_resource, "nominalQuota": count}
        if queue.borrowing is not None and queue.borrowing.limit is not None:
            resource["borrowingLimit"] = queue.borrowing.limit
        gpu_flavors.append({"name": dns_name(flavor), "resources": [resource]})
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": queue.namespace}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": CPU_MEMORY_FLAVOR,
                        "resources": [
                            {"name": "cpu", "nominalQuota": queue.cpu},
                            {"name": "memory", "nominalQuota": quantity(queue.memory)},
                        ],
                    }
                ],
            },
            {"coveredResources": [queue.gpu_resource], "flavors": gpu_flavors},
        ],
        "preemption": {
            "reclaimWithinCohort": "Any",
            "borrowWithinCohort": {"policy": "LowerPriority"},
            "withinClusterQueue": "LowerPriority",
        },
    }
    if queue.borrowing is not None:
        spec["cohortName"] = queue.borrowing.cohort
    name = cluster_queue_name(queue)
    return manifest(API, "ClusterQueue", meta(name, None, labels("queue", name)), spec=spec)


def local_queue(queue: QueueSpec) -> Manifest:
    """Jobs join with the label kueue.x-k8s.io/queue-name: <team>."""
    return manifest(
        API,
        "LocalQueue",
        meta(queue.team, queue.namespace, labels("queue", queue.team)),
        spec={"clusterQueue": cluster_queue_name(queue)},
    )


def priority_class(queue: QueueSpec) -> Manifest:
    name = priority_class_name(queue)
    return manifest(
        API,
        "WorkloadPriorityClass",
        meta(name, None, labels("queue", name)),
        value=queue.priority,
        description=f"Batch and training jobs of team {queue.team}",
    )
