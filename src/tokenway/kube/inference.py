"""Gateway API Inference Extension objects: InferencePool, InferenceObjectives and the HTTPRoute."""

from __future__ import annotations

from tokenway.config.deployments import DeploymentSpec
from tokenway.config.models import ModelSpec
from tokenway.config.picker import PickerSettings
from tokenway.kube.modelserver import pod_labels
from tokenway.kube.objects import Manifest, dns_name, labels, manifest, meta, port_of

POOL_GROUP = "inference.networking.k8s.io"
MODEL_HEADER = "X-Gateway-Model-Name"
MAX_MATCHES = 64


def picker_name(spec: DeploymentSpec) -> str:
    return f"{spec.pool}-epp"


def inference_pool(spec: DeploymentSpec, settings: PickerSettings) -> Manifest:
    return manifest(
        f"{POOL_GROUP}/v1",
        "InferencePool",
        meta(spec.pool, spec.namespace, labels("inference-pool", spec.pool)),
        spec={
            "selector": {"matchLabels": pod_labels(spec)},
            "targetPorts": [{"number": spec.port}],
            "appProtocol": "http",
            "endpointPickerRef": {
                "group": "",
                "kind": "Service",
                "name": picker_name(spec),
                "port": {"number": port_of(settings.listen)},
                "failureMode": settings.failure_mode,
            },
        },
    )


def inference_objective(spec: DeploymentSpec, model: ModelSpec) -> Manifest:
    """One per public model: the name clients send in x-gateway-inference-objective."""
    return manifest(
        "inference.networking.x-k8s.io/v1alpha2",
        "InferenceObjective",
        meta(dns_name(model.name), spec.namespace, labels("inference-objective", spec.pool)),
        spec={
            "priority": model.priority,
            "poolRef": {"group": POOL_GROUP, "kind": "InferencePool", "name": spec.pool},
        },
    )


def http_route(spec: DeploymentSpec, models: list[ModelSpec], by_model: bool) -> Manifest:
    """Gateway -> pool. With several pools behind one Gateway, match on the model-name header
    that body-based routing sets; with one pool, everything under /v1 goes to it."""
    if by_model:
        matches = [
            {
                "path": {"type": "PathPrefix", "value": "/v1"},
                "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": m.name}],
            }
            for m in models
        ]
    else:
        matches = [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    backend = {"group": POOL_GROUP, "kind": "InferencePool", "name": spec.pool}
    rules = [
        {
            "matches": matches[i : i + MAX_MATCHES],
            "backendRefs": [backend],
            "timeouts": {"request": "300s"},
        }
        for i in range(0, len(matches), MAX_MATCHES)
    ]
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": spec.gateway.name}
    if spec.gateway.namespace is not None:
        parent["namespace"] = spec.gateway.namespace
    return manifest(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        meta(spec.pool, spec.namespace, labels("route", spec.pool)),
        spec={
            "parentRefs": [parent],
            "rules": rules,
        },
    )
