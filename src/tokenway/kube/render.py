"""The platform file -> every Kubernetes object, as plain data in a stable order.

Rendering is a pure function of the parsed file, its raw mapping (what the picker mounts) and
the policy files it names; the same input always gives byte-identical output.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from tokenway.config.deployments import DeploymentSpec
from tokenway.config.loader import parse_platform
from tokenway.config.platform import PlatformConfig
from tokenway.kube import dashboard, dra, inference, kueue, modelserver, monitoring, picker
from tokenway.kube.autoscale import scaled_object
from tokenway.kube.objects import Manifest, labels, manifest, meta, port_of


@dataclass(frozen=True)
class RenderInput:
    """`raw`: the platform file as loaded YAML; `policies`: each Rego path it names -> text."""

    config: PlatformConfig
    raw: Mapping[str, Any]
    policies: Mapping[str, str]


def rego_path(raw: Mapping[str, Any]) -> str | None:
    """The Rego policy file the platform file names under access.rego, if any."""
    access = raw.get("access")
    if isinstance(access, Mapping) and isinstance(access.get("rego"), str):
        return str(access["rego"])
    return None


def picker_platform(source: RenderInput, spec: DeploymentSpec) -> str:
    """The platform file as the picker of one pool sees it: that pool, discovered from its
    InferencePool, its models, and the gateway-side sections unchanged."""
    data = copy.deepcopy(dict(source.raw))
    for key in ("deployments", "queues", "slos"):
        data.pop(key, None)
    pool = next(dict(p) for p in source.raw.get("pools", []) if p.get("name") == spec.pool)
    pool.pop("endpoints", None)
    pool["inferencePool"] = {"name": spec.pool, "namespace": spec.namespace}
    data["pools"] = [pool]
    data["models"] = [m for m in source.raw.get("models", []) if m.get("pool") == spec.pool]
    settings = source.config.picker
    # In a pod the picker must listen beyond loopback: Envoy and Prometheus connect from outside.
    data["picker"] = {
        **dict(data.get("picker") or {}),
        "listen": f"0.0.0.0:{port_of(settings.listen)}",
        "healthListen": f"0.0.0.0:{port_of(settings.health_listen)}",
        "metricsListen": f"0.0.0.0:{port_of(settings.metrics_listen)}",
    }
    if (path := rego_path(source.raw)) is not None:
        data["access"]["rego"] = f"{picker.POLICY_DIR}/{PurePosixPath(path).name}"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    parse_platform(text, f"<platform file of picker {inference.picker_name(spec)}>")
    return text


def _namespaces(config: PlatformConfig) -> list[Manifest]:
    names = sorted({d.namespace for d in config.deployments} | {q.namespace for q in config.queues})
    return [manifest("v1", "Namespace", meta(n, None, labels("namespace", n))) for n in names]


def _pool_objects(source: RenderInput, spec: DeploymentSpec) -> list[Manifest]:
    config = source.config
    models = [m for m in config.models if m.pool == spec.pool]
    pools_served = {d.pool for d in config.deployments}
    platform_text = picker_platform(source, spec)
    otlp = config.observability.otlp.endpoint if config.observability.otlp else None
    policies = {}
    if (path := rego_path(source.raw)) is not None:
        policies[PurePosixPath(path).name] = source.policies[path]
    objects = [
        dra.resource_claim_template(spec),
        modelserver.deployment(spec, otlp),
        modelserver.service(spec),
        modelserver.disruption_budget(spec),
        inference.inference_pool(spec, config.picker),
        *(inference.inference_objective(spec, m) for m in models),
        inference.http_route(spec, models, by_model=len(pools_served) > 1),
        picker.service_account(spec),
        picker.role(spec),
        picker.role_binding(spec),
        picker.config_map(spec, platform_text),
        picker.deployment(spec, config.picker, platform_text, policies, otlp),
        picker.service(spec, config.picker),
    ]
    if spec.network_policy:
        objects.append(monitoring.network_policy(spec, config.observability))
    if policies:
        objects.append(picker.policy_config_map(spec, policies))
    if config.observability.pod_monitors:
        objects += [monitoring.pod_monitor(spec), monitoring.service_monitor(spec)]
    scaler = scaled_object(spec, config.pool(spec.pool), config.observability.prometheus_url)
    if scaler is not None:
        objects.append(scaler)
    return objects


def render(source: RenderInput) -> list[Manifest]:
    """Every object, sorted by (namespace, kind, name) so output never depends on dict order."""
    config = source.config
    objects = _namespaces(config)
    objects += dra.device_classes(config.deployments)
    for spec in config.deployments:
        objects += _pool_objects(source, spec)
    if config.queues:
        objects += kueue.resource_flavors(config.queues)
        for queue in config.queues:
            objects += [
                kueue.cluster_queue(queue),
                kueue.local_queue(queue),
                kueue.priority_class(queue),
            ]
    if config.observability.dashboards and config.deployments:
        objects.append(dashboard.dashboard_config_map(config))
    return sorted(objects, key=object_key)


def object_key(obj: Manifest) -> tuple[str, str, str]:
    return (obj["metadata"].get("namespace", ""), obj["kind"], obj["metadata"]["name"])


def object_ref(obj: Manifest) -> str:
    """How errors and listings name an object: Kind namespace/name."""
    namespace = obj["metadata"].get("namespace")
    name = obj["metadata"]["name"]
    return f"{obj['kind']} {namespace}/{name}" if namespace else f"{obj['kind']} {name}"
