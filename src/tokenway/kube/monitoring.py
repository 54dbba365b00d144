"""Prometheus Operator monitors for model servers and pickers, and the NetworkPolicy that admits
only the gateway path (Envoy, the picker's scrapes) and Prometheus to the model servers."""

from __future__ import annotations

from tokenway.config.deployments import DeploymentSpec
from tokenway.config.observability import ObservabilitySettings
from tokenway.kube import picker
from tokenway.kube.inference import picker_name
from tokenway.kube.modelserver import pod_labels
from tokenway.kube.objects import DEPLOYMENT_LABEL, POOL_LABEL, Manifest, labels, manifest, meta

MONITORING_API = "monitoring.coreos.com/v1"


def pod_monitor(spec: DeploymentSpec) -> Manifest:
    """Scrapes vLLM /metrics; pod labels become tokenway_io_deployment and tokenway_io_pool."""
    return manifest(
        MONITORING_API,
        "PodMonitor",
        meta(spec.name, spec.namespace, labels("monitoring", spec.name)),
        spec={
            "selector": {"matchLabels": pod_labels(spec)},
            "podTargetLabels": [DEPLOYMENT_LABEL, POOL_LABEL],
            "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    )


def service_monitor(spec: DeploymentSpec) -> Manifest:
    name = picker_name(spec)
    return manifest(
        MONITORING_API,
        "ServiceMonitor",
        meta(name, spec.namespace, labels("monitoring", name)),
        spec={
            "selector": {"matchLabels": picker.selector(spec)},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    )


def network_policy(spec: DeploymentSpec, observability: ObservabilitySettings) -> Manifest:
    def namespace(name: str) -> dict[str, object]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    sources: list[dict[str, object]] = [{"podSelector": {"matchLabels": picker.selector(spec)}}]
    # The Gateway's proxy pods carry the bytes: in the Gateway's namespace unless told where.
    gateway = spec.gateway
    sources.append(namespace(gateway.proxy_namespace or gateway.namespace or spec.namespace))
    sources.append(namespace(observability.namespace))
    return manifest(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        meta(spec.name, spec.namespace, labels("model-server", spec.name)),
        spec={
            "podSelector": {"matchLabels": pod_labels(spec)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": spec.port}]}],
        },
    )
