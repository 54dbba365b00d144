"""KEDA ScaledObjects: model servers scale on token throughput and saturation, not on CPU.

Queries read the series the rendered PodMonitor collects: vLLM metrics carry the pod labels
tokenway_io_deployment and namespace; the gateway's tokenway_requests_total carries `pool`.
"""

from __future__ import annotations

from typing import Any

from tokenway.config.deployments import Autoscale, DeploymentSpec
from tokenway.config.pools import PoolSpec
from tokenway.kube.objects import Manifest, labels, manifest, meta

WAKE_THRESHOLD = "1000000"


def _selector(spec: DeploymentSpec) -> str:
    return f'{{namespace="{spec.namespace}",tokenway_io_deployment="{spec.name}"}}'


def tokens_query(spec: DeploymentSpec) -> str:
    """Output tokens per second over the deployment; AverageValue divides it per replica."""
    return f"sum(rate(vllm:generation_tokens_total{_selector(spec)}[1m]))"


def saturation_query(spec: DeploymentSpec, pool: PoolSpec) -> str:
    """Mean over pods of max(queue / queueDepth, kv / kvCache), the picker's saturation."""
    sel = _selector(spec)
    queue = f"vllm:num_requests_waiting{sel} / {pool.saturation.queue_depth:g}"
    kv = f"vllm:kv_cache_usage_perc{sel} / {pool.saturation.kv_cache:g}"
    return (
        "avg(max by (pod) ("
        f'label_replace({queue}, "signal", "queue", "", "") or '
        f'label_replace({kv}, "signal", "kv", "", "")))'
    )


def demand_query(spec: DeploymentSpec) -> str:
    """Requests the gateway routed to the pool: the only signal left while it has zero replicas."""
    return f'sum(rate(tokenway_requests_total{{pool="{spec.pool}"}}[2m]))'


def _trigger(
    name: str, metric_type: str, server: str, query: str, threshold: str
) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": metric_type,
        "metadata": {"serverAddress": server, "query": query, "threshold": threshold},
    }


def triggers(
    spec: DeploymentSpec, pool: PoolSpec, autoscale: Autoscale, server: str
) -> list[dict[str, Any]]:
    found = []
    if autoscale.tokens_per_second_per_replica is not None:
        threshold = f"{autoscale.tokens_per_second_per_replica:g}"
        found.append(_trigger("tokens", "AverageValue", server, tokens_query(spec), threshold))
    if autoscale.saturation is not None:
        threshold = f"{autoscale.saturation:g}"
        found.append(
            _trigger("saturation", "Value", server, saturation_query(spec, pool), threshold)
        )
    if autoscale.scale_to_zero:
        # Only wakes the deployment (any demand > 0); the threshold is out of reach so the
        # other triggers decide the size.
        wake = _trigger("demand", "AverageValue", server, demand_query(spec), WAKE_THRESHOLD)
        wake["metadata"]["activationThreshold"] = "0"
        found.append(wake)
    return found


def scaled_object(spec: DeploymentSpec, pool: PoolSpec, server: str) -> Manifest | None:
    autoscale = spec.autoscale
    if autoscale is None:
        return None
    return manifest(
        "keda.sh/v1alpha1",
        "ScaledObject",
        meta(spec.name, spec.namespace, labels("autoscaler", spec.name)),
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "pollingInterval": autoscale.polling_interval,
            "cooldownPeriod": autoscale.cooldown_period,
            "minReplicaCount": spec.replicas.min,
            "maxReplicaCount": spec.replicas.max,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        # Adding a replica costs minutes of weight loading: remove them slowly.
                        "scaleDown": {
                            "stabilizationWindowSeconds": 300,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                        },
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                        },
                    }
                }
            },
            "triggers": triggers(spec, pool, autoscale, server),
        },
    )
