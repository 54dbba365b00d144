"""The rendered DRA CEL selectors, evaluated against upstream example ResourceSlices."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from tests.kube.conftest import DRA_EXAMPLES

from tokenway.config.loader import parse_platform
from tokenway.kube.dra import resource_claim_template
from tokenway.kube.dra_select import Device, SelectorError, devices, parse_quantity, select

GPU_CLASS = re.search(
    r'expression: "(.+)"', (DRA_EXAMPLES / "nvidia-helm-deviceclass-gpu.yaml.tpl").read_text()
).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def conformance() -> list[Device]:
    listing = yaml.safe_load(
        (DRA_EXAMPLES / "conformance-vks-v1.36-nvidia-resourceslices.yaml").read_text()
    )
    return devices(listing["items"])


@pytest.fixture(scope="module")
def partitionable() -> list[Device]:
    fragment = yaml.safe_load(
        (DRA_EXAMPLES / "kep4815-partitionable-gpu-counters-fragment.yaml").read_text()
    )
    spec = {
        "driver": "gpu.nvidia.com",
        "pool": {"name": "node-a"},
        "nodeName": "node-a",
        **fragment,
    }
    return devices([{"spec": spec}])


def _options(gpus: str) -> list[dict[str, Any]]:
    text = (
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        f"deployments:\n  - name: d\n    pool: p\n    model: m\n    gpus: {gpus}\n"
    )
    spec = parse_platform(text, "p.yaml").deployments[0]
    request = resource_claim_template(spec)["spec"]["spec"]["devices"]["requests"][0]
    return request.get("firstAvailable") or [{"name": "gpu", **request["exactly"]}]


def _selectors(option: dict[str, Any]) -> list[str]:
    return [s["cel"]["expression"] for s in option.get("selectors", [])]


def _chosen(options: list[dict[str, Any]], candidates: list[Device]) -> tuple[str, list[str]]:
    """firstAvailable: the first alternative with enough matching devices (class + request)."""
    for option in options:
        found = select([GPU_CLASS, *_selectors(option)], candidates)
        if len(found) >= option["count"]:
            return option["name"], [f"{d.node}/{d.name}" for d in found]
    return "", []


def test_upstream_slices_are_read(conformance: list[Device]) -> None:
    assert [(d.node, d.name) for d in conformance] == [
        ("conformance-test-np1-qcqc8-bpdtl-rcj8j", "gpu-0"),
        ("conformance-test-np1-qcqc8-bpdtl-wv2gs", "gpu-0"),
    ]
    first = conformance[0]
    assert first.attributes["gpu.nvidia.com"]["productName"] == "GRID A100-10C"
    assert first.attributes["resource.kubernetes.io"]["pcieRoot"] == "pci0000:03"


@pytest.mark.parametrize(
    ("gpus", "selected"),
    [
        ("{prefer: [{product: GRID A100-10C}]}", 2),
        ("{prefer: [{product: NVIDIA H100 80GB HBM3}]}", 0),
        ("{prefer: [{family: Ampere}], minMemory: 10Gi}", 2),
        ("{prefer: [{family: Ampere}], minMemory: 10240Mi}", 2),
        ("{prefer: [{family: Ampere}], minMemory: 16Gi}", 0),
        ("{prefer: [{family: Hopper}]}", 0),
        ("{minMemory: 8Gi}", 2),
        ("{}", 2),
    ],
)
def test_selectors_pick_exactly_the_matching_devices(
    conformance: list[Device], gpus: str, selected: int
) -> None:
    (option,) = _options(gpus)
    assert len(select([GPU_CLASS, *_selectors(option)], conformance)) == selected


def test_first_available_falls_through_to_the_alternative_present(
    conformance: list[Device],
) -> None:
    options = _options(
        "{prefer: [{product: NVIDIA H200}, {product: NVIDIA H100 80GB HBM3, count: 2},"
        " {product: GRID A100-10C}]}"
    )
    name, chosen = _chosen(options, conformance)
    assert name == "grid-a100-10c"
    assert chosen == [
        "conformance-test-np1-qcqc8-bpdtl-rcj8j/gpu-0",
        "conformance-test-np1-qcqc8-bpdtl-wv2gs/gpu-0",
    ]


def test_memory_selector_on_partitionable_device(partitionable: list[Device]) -> None:
    (option,) = _options("{minMemory: 20Gi}")
    assert [d.name for d in select(_selectors(option), partitionable)] == ["gpu-0"]
    (option,) = _options("{minMemory: 10Gi}")
    assert len(select(_selectors(option), partitionable)) == 5


def test_missing_attribute_is_an_error_not_a_mismatch(partitionable: list[Device]) -> None:
    (option,) = _options("{prefer: [{product: NVIDIA H200}]}")
    with pytest.raises(SelectorError, match="productName"):
        select(_selectors(option), partitionable)


def test_quantities_are_opaque_like_in_kubernetes(conformance: list[Device]) -> None:
    memory = 'device.capacity["gpu.nvidia.com"].memory'
    assert select([f'{memory} == quantity("10240Mi")'], conformance) == conformance
    with pytest.raises(SelectorError):
        select([f'{memory} >= quantity("1Gi")'], conformance)
    version = 'device.attributes["gpu.nvidia.com"].driverVersion'
    assert select([f'{version}.isGreaterThan(semver("570.0.0"))'], conformance) == conformance
    assert parse_quantity("500m") * 2 == 1 and parse_quantity("1e3") == 1000
