"""The tokenway endpoint picker of one pool: Deployment, Service, ServiceAccount, RBAC, ConfigMap.

It runs `tokenway epp` against the platform file mounted from the ConfigMap and discovers the
pool's endpoints from the InferencePool, so its Role grants read access to exactly that.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tokenway.config.deployments import DeploymentSpec
from tokenway.config.picker import PickerSettings
from tokenway.kube.inference import picker_name
from tokenway.kube.objects import POOL_LABEL, Manifest, labels, manifest, meta, port_of

COMPONENT = "endpoint-picker"
CONFIG_DIR = "/etc/tokenway"
POLICY_DIR = f"{CONFIG_DIR}/policies"


def ports(settings: PickerSettings) -> dict[str, int]:
    """Named container ports: ext_proc, gRPC health and metrics."""
    return {
        "grpc": port_of(settings.listen),
        "grpc-health": port_of(settings.health_listen),
        "metrics": port_of(settings.metrics_listen),
    }


def _labels(spec: DeploymentSpec) -> dict[str, str]:
    return labels(COMPONENT, picker_name(spec), **{POOL_LABEL: spec.pool})


def selector(spec: DeploymentSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": picker_name(spec), "app.kubernetes.io/component": COMPONENT}


def service_account(spec: DeploymentSpec) -> Manifest:
    return manifest("v1", "ServiceAccount", meta(picker_name(spec), spec.namespace, _labels(spec)))


def role(spec: DeploymentSpec) -> Manifest:
    """What discovery reads (tokenway.kube.discovery); priorities come from the platform file."""
    read = ["get", "list", "watch"]
    return manifest(
        "rbac.authorization.k8s.io/v1",
        "Role",
        meta(picker_name(spec), spec.namespace, _labels(spec)),
        rules=[
            {"apiGroups": [""], "resources": ["pods"], "verbs": read},
            {
                "apiGroups": ["inference.networking.k8s.io"],
                "resources": ["inferencepools"],
                "verbs": read,
            },
        ],
    )


def role_binding(spec: DeploymentSpec) -> Manifest:
    name = picker_name(spec)
    return manifest(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        meta(name, spec.namespace, _labels(spec)),
        subjects=[{"kind": "ServiceAccount", "name": name, "namespace": spec.namespace}],
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
    )


def config_map(spec: DeploymentSpec, platform_text: str) -> Manifest:
    return manifest(
        "v1",
        "ConfigMap",
        meta(picker_name(spec), spec.namespace, _labels(spec)),
        data={"platform.yaml": platform_text},
    )


def policy_config_map(spec: DeploymentSpec, files: dict[str, str]) -> Manifest:
    return manifest(
        "v1",
        "ConfigMap",
        meta(f"{picker_name(spec)}-policies", spec.namespace, _labels(spec)),
        data=dict(sorted(files.items())),
    )


def _grpc_probe(port: int, service: str, period: int) -> dict[str, Any]:
    return {
        "grpc": {"port": port, "service": service},
        "periodSeconds": period,
        "failureThreshold": 3,
    }


def deployment(
    spec: DeploymentSpec,
    settings: PickerSettings,
    platform_text: str,
    policies: dict[str, str],
    otlp_endpoint: str | None,
) -> Manifest:
    name = picker_name(spec)
    named = ports(settings)
    # A digest of the mounted files rolls the pods when the configuration changes.
    digest = hashlib.sha256(platform_text.encode())
    for file_name, text in sorted(policies.items()):
        digest.update(f"\0{file_name}\0{text}".encode())
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": name}}]
    if policies:
        mounts.append({"name": "policies", "mountPath": POLICY_DIR, "readOnly": True})
        volumes.append({"name": "policies", "configMap": {"name": f"{name}-policies"}})
    container: dict[str, Any] = {
        "name": "epp",
        "image": spec.epp.image,
        "args": ["epp", "-c", f"{CONFIG_DIR}/platform.yaml"],
        "ports": [
            {"name": port_name, "containerPort": number, "protocol": "TCP"}
            for port_name, number in named.items()
        ],
        "livenessProbe": _grpc_probe(named["grpc-health"], "liveness", 10),
        "readinessProbe": _grpc_probe(named["grpc-health"], "readiness", 5),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if otlp_endpoint is not None:
        container["env"] = [
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp_endpoint},
            {"name": "OTEL_SERVICE_NAME", "value": name},
        ]
    template_labels = {**_labels(spec), **selector(spec)}
    return manifest(
        "apps/v1",
        "Deployment",
        meta(name, spec.namespace, _labels(spec)),
        spec={
            "replicas": spec.epp.replicas,
            "selector": {"matchLabels": selector(spec)},
            "template": {
                "metadata": {
                    "labels": template_labels,
                    "annotations": {"tokenway.io/config-sha256": digest.hexdigest()},
                },
                "spec": {
                    "serviceAccountName": name,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    )


def service(spec: DeploymentSpec, settings: PickerSettings) -> Manifest:
    service_ports = []
    for port_name, number in ports(settings).items():
        port: dict[str, Any] = {"name": port_name, "port": number, "targetPort": port_name}
        if port_name == "grpc":
            port["appProtocol"] = "http2"
        service_ports.append({**port, "protocol": "TCP"})
    return manifest(
        "v1",
        "Service",
        meta(picker_name(spec), spec.namespace, _labels(spec)),
        spec={"selector": selector(spec), "ports": service_ports},
    )
