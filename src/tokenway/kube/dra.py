"""GPU needs in plain terms -> a DRA ResourceClaimTemplate (resource.k8s.io/v1) with CEL selectors.

Alternatives become `firstAvailable` subrequests tried in order; topology becomes a
`matchAttribute` constraint. The NVIDIA driver's chart installs the gpu.nvidia.com and
mig.nvidia.com DeviceClasses, so a DeviceClass is rendered only for other drivers.
"""

from __future__ import annotations

import json
from typing import Any

from tokenway.config.deployments import DeploymentSpec, GpuOption, GpuSpec
from tokenway.kube.objects import Manifest, dns_name, labels, manifest, meta, quantity

NVIDIA_DRIVER = "gpu.nvidia.com"
REQUEST = "gpu"
TOPOLOGY_ATTRIBUTES = {"pcieRoot": "resource.kubernetes.io/pcieRoot"}


def _attribute(driver: str, name: str) -> str:
    return f"device.attributes[{json.dumps(driver)}].{name}"


def _min_memory(driver: str, size: int) -> str:
    return (
        f"device.capacity[{json.dumps(driver)}].memory"
        f".compareTo(quantity({json.dumps(quantity(size))})) >= 0"
    )


def option_expression(gpus: GpuSpec, option: GpuOption | None) -> str | None:
    """The CEL selector for one alternative (or for the plain request), None if it needs none."""
    driver = gpus.driver
    clauses = []
    if gpus.mig_profile is not None:
        clauses.append(f"{_attribute(driver, 'profile')} == {json.dumps(gpus.mig_profile)}")
    if option is not None and option.product is not None:
        clauses.append(f"{_attribute(driver, 'productName')} == {json.dumps(option.product)}")
    if option is not None and option.family is not None:
        clauses.append(f"{_attribute(driver, 'architecture')} == {json.dumps(option.family)}")
    memory = option.min_memory if option is not None and option.min_memory else gpus.min_memory
    if memory:
        clauses.append(_min_memory(driver, memory))
    return " && ".join(clauses) if clauses else None


def device_class_name(gpus: GpuSpec) -> str:
    if gpus.driver != NVIDIA_DRIVER:
        return gpus.driver
    return "mig.nvidia.com" if gpus.mig_profile is not None else "gpu.nvidia.com"


def _exactly(gpus: GpuSpec, option: GpuOption | None, count: int) -> dict[str, Any]:
    body: dict[str, Any] = {"deviceClassName": device_class_name(gpus)}
    if (expression := option_expression(gpus, option)) is not None:
        body["selectors"] = [{"cel": {"expression": expression}}]
    body["allocationMode"] = "ExactCount"
    body["count"] = count
    return body


def _subrequest_names(options: list[GpuOption]) -> list[str]:
    names: list[str] = []
    for index, option in enumerate(options):
        base = dns_name(option.product or option.family or "gpu", 50)
        names.append(base if base not in names else f"{base}-{index}")
    return names


def device_request(gpus: GpuSpec) -> dict[str, Any]:
    if not gpus.prefer:
        return {"name": REQUEST, "exactly": _exactly(gpus, None, gpus.count)}
    subrequests = [
        {"name": name, **_exactly(gpus, option, count)}
        for name, option, count in zip(
            _subrequest_names(gpus.prefer), gpus.prefer, gpus.counts(), strict=True
        )
    ]
    return {"name": REQUEST, "firstAvailable": subrequests}


def claim_template_name(spec: DeploymentSpec) -> str:
    return f"{spec.name}-gpus"


def resource_claim_template(spec: DeploymentSpec) -> Manifest:
    gpus = spec.gpus
    devices: dict[str, Any] = {"requests": [device_request(gpus)]}
    if gpus.topology != "any" and max(gpus.counts()) > 1:
        devices["constraints"] = [
            {"requests": [REQUEST], "matchAttribute": TOPOLOGY_ATTRIBUTES[gpus.topology]}
        ]
    object_labels = labels("model-server", spec.name)
    return manifest(
        "resource.k8s.io/v1",
        "ResourceClaimTemplate",
        meta(claim_template_name(spec), spec.namespace, object_labels),
        spec={"metadata": {"labels": object_labels}, "spec": {"devices": devices}},
    )


def device_classes(deployments: list[DeploymentSpec]) -> list[Manifest]:
    """DeviceClasses for drivers whose charts do not ship one, one per driver."""
    drivers = sorted({d.gpus.driver for d in deployments if d.gpus.driver != NVIDIA_DRIVER})
    return [
        manifest(
            "resource.k8s.io/v1",
            "DeviceClass",
            meta(driver, None, labels("dra", dns_name(driver))),
            spec={"selectors": [{"cel": {"expression": f"device.driver == {json.dumps(driver)}"}}]},
        )
        for driver in drivers
    ]
