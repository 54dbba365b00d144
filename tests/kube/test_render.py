"""Rendering the example: every expected object, deterministic output, snapshot."""

from __future__ import annotations

import os
from pathlib import Path

from tests.kube.conftest import render_input

from tokenway.kube.output import render_files, write_tree
from tokenway.kube.render import object_ref, render

SNAPSHOT = Path(__file__).parent / "snapshots" / "example.yaml"


def _by_ref(text: str) -> dict[str, dict]:
    return {object_ref(o): o for o in render(render_input(text))}


def test_example_renders_every_kind(example_text: str) -> None:
    kinds = {o["kind"] for o in render(render_input(example_text))}
    assert kinds == {
        "Namespace", "ResourceClaimTemplate", "Deployment", "Service", "PodDisruptionBudget",
        "InferencePool", "InferenceObjective", "HTTPRoute", "ServiceAccount", "Role",
        "RoleBinding", "ConfigMap", "NetworkPolicy", "PodMonitor", "ServiceMonitor",
        "ScaledObject", "ResourceFlavor", "ClusterQueue", "LocalQueue", "WorkloadPriorityClass",
    }  # fmt: skip


def test_rendering_is_deterministic(example_text: str, tmp_path: Path) -> None:
    first = render_files(render(render_input(example_text)), "platform.yaml")
    second = render_files(render(render_input(example_text)), "platform.yaml")
    assert first == second
    write_tree(first, tmp_path)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == first
    kustomization = first["kustomization.yaml"]
    assert all(f"- {name}" in kustomization for name in first if name != "kustomization.yaml")


def test_snapshot(example_text: str) -> None:
    files = render_files(render(render_input(example_text)), "platform.yaml")
    text = "".join(f"--- # {name}\n{body}" for name, body in files.items())
    if os.environ.get("TOKENWAY_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "rendering changed; review the diff and rerun with TOKENWAY_UPDATE_SNAPSHOTS=1"
    )


def test_rerender_removes_only_its_own_stale_files(example_text: str, tmp_path: Path) -> None:
    write_tree(render_files(render(render_input(example_text)), "platform.yaml"), tmp_path)
    (tmp_path / "overlay.yaml").write_text("kind: Hand-written\n")
    fewer = example_text.replace(
        "  - team: research\n    namespace: research\n", "  - team: re\n    namespace: re\n"
    )
    write_tree(render_files(render(render_input(fewer)), "platform.yaml"), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert "research.localqueue.research.yaml" not in names
    assert "re.localqueue.re.yaml" in names
    assert "overlay.yaml" in names


def test_model_server_args_probes_and_claim(example_text: str) -> None:
    objects = _by_ref(example_text)
    pod = objects["Deployment models/llama-8b"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert container["command"] == ["vllm", "serve"]
    assert args[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert args[args.index("--max-loras") + 1] == "4"
    assert args[args.index("--lora-modules") + 1] == "support-lora-v3=acme/support-lora-v3"
    assert "--enable-prefix-caching" in args and "--enable-lora" in args
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
    assert container["resources"]["claims"] == [{"name": "gpus"}]
    assert pod["resourceClaims"] == [{"name": "gpus", "resourceClaimTemplateName": "llama-8b-gpus"}]
    assert "replicas" not in objects["Deployment models/llama-8b"]["spec"]  # KEDA owns it
    # vLLM's own spans are opt-in (vllm.tracing): the stock image lacks OpenTelemetry.
    assert "--otlp-traces-endpoint" not in args
    picker_env = objects["Deployment models/llama-8b-epp"]["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert {
        "name": "OTEL_EXPORTER_OTLP_ENDPOINT",
        "value": "http://otel-collector.observability:4317",
    } in picker_env
    pdb = objects["PodDisruptionBudget models/llama-8b"]["spec"]
    assert pdb["maxUnavailable"] == 1


def test_alternatives_with_different_counts_size_tensor_parallel_at_run_time(
    example_text: str,
) -> None:
    container = _by_ref(example_text)["Deployment models/qwen-32b"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["command"] == ["/bin/sh", "-c"]
    assert "torch.cuda.device_count()" in container["args"][0]


def test_dra_claim_template(example_text: str) -> None:
    objects = _by_ref(example_text)
    llama = objects["ResourceClaimTemplate models/llama-8b-gpus"]["spec"]["spec"]["devices"]
    options = llama["requests"][0]["firstAvailable"]
    assert [o["name"] for o in options] == ["nvidia-h200", "nvidia-h100-80gb-hbm3", "ampere"]
    assert all(o["deviceClassName"] == "gpu.nvidia.com" for o in options)
    ampere = options[2]["selectors"][0]["cel"]["expression"]
    assert 'architecture == "Ampere"' in ampere and 'quantity("79Gi")' in ampere
    assert "constraints" not in llama  # one device: no topology to constrain
    qwen = objects["ResourceClaimTemplate models/qwen-32b-gpus"]["spec"]["spec"]["devices"]
    assert [o["count"] for o in qwen["requests"][0]["firstAvailable"]] == [1, 2]
    assert qwen["constraints"] == [
        {"requests": ["gpu"], "matchAttribute": "resource.kubernetes.io/pcieRoot"}
    ]


def test_pool_picker_and_route(example_text: str) -> None:
    objects = _by_ref(example_text)
    pool = objects["InferencePool models/llama-8b"]["spec"]
    assert pool["targetPorts"] == [{"number": 8000}]
    assert pool["endpointPickerRef"] == {
        "group": "", "kind": "Service", "name": "llama-8b-epp", "port": {"number": 9002},
        "failureMode": "FailOpen",
    }  # fmt: skip
    assert objects["InferenceObjective models/nightly-summaries"]["spec"]["priority"] == -1
    picker = objects["Deployment models/llama-8b-epp"]["spec"]["template"]["spec"]
    container = picker["containers"][0]
    assert container["args"] == ["epp", "-c", "/etc/tokenway/platform.yaml"]
    assert {p["containerPort"] for p in container["ports"]} == {9002, 9003, 9090}
    assert container["readinessProbe"]["grpc"] == {"port": 9003, "service": "readiness"}
    assert picker["serviceAccountName"] == "llama-8b-epp"
    rules = objects["Role models/llama-8b-epp"]["rules"]
    assert all(r["verbs"] == ["get", "list", "watch"] for r in rules)
    route = objects["HTTPRoute models/llama-8b"]["spec"]
    assert route["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway",
        "namespace": "gateway",
    }  # fmt: skip
    headers = [m["headers"][0]["value"] for m in route["rules"][0]["matches"]]
    assert headers == ["llama-3.1-8b-instruct", "support-assistant", "nightly-summaries"]


def test_picker_platform_file_is_valid_and_scoped_to_its_pool(example_text: str) -> None:
    from tokenway.config.loader import parse_platform

    text = _by_ref(example_text)["ConfigMap models/llama-8b-epp"]["data"]["platform.yaml"]
    config = parse_platform(text, "picker.yaml")
    assert [p.name for p in config.pools] == ["llama-8b"]
    assert config.pools[0].inference_pool is not None and not config.pools[0].endpoints
    assert config.picker.listen == "0.0.0.0:9002"
    assert not config.deployments and not config.queues


def test_rego_policy_is_mounted_when_configured(example_text: str) -> None:
    text = example_text.replace("teams:\n", "access:\n  rego: policies/models.rego\n\nteams:\n", 1)
    policy = "package tokenway.authz\n\ndefault allow := true\n"
    objects = {
        object_ref(o): o for o in render(render_input(text, {"policies/models.rego": policy}))
    }
    assert objects["ConfigMap models/llama-8b-epp-policies"]["data"] == {"models.rego": policy}
    picker = objects["ConfigMap models/llama-8b-epp"]["data"]["platform.yaml"]
    assert "rego: /etc/tokenway/policies/models.rego" in picker
    volumes = objects["Deployment models/llama-8b-epp"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "policies", "configMap": {"name": "llama-8b-epp-policies"}} in volumes


def test_autoscaler_triggers(example_text: str) -> None:
    objects = _by_ref(example_text)
    llama = objects["ScaledObject models/llama-8b"]["spec"]
    assert (llama["minReplicaCount"], llama["maxReplicaCount"]) == (1, 8)
    tokens, saturation = llama["triggers"]
    assert tokens["metricType"] == "AverageValue" and tokens["metadata"]["threshold"] == "2500"
    assert "vllm:generation_tokens_total" in tokens["metadata"]["query"]
    assert saturation["metricType"] == "Value" and saturation["metadata"]["threshold"] == "0.8"
    qwen = objects["ScaledObject models/qwen-32b"]["spec"]
    assert qwen["minReplicaCount"] == 0
    assert qwen["triggers"][-1]["metadata"]["activationThreshold"] == "0"


def test_kueue_objects(example_text: str) -> None:
    objects = _by_ref(example_text)
    search = objects["ClusterQueue search-cq"]["spec"]
    assert search["cohortName"] == "research"
    gpu_group = search["resourceGroups"][1]
    assert gpu_group["coveredResources"] == ["nvidia.com/gpu"]
    assert gpu_group["flavors"] == [
        {
            "name": "h100",
            "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 8, "borrowingLimit": 8}],
        }
    ]
    assert objects["LocalQueue search/search"]["spec"] == {"clusterQueue": "search-cq"}
    assert objects["WorkloadPriorityClass search-priority"]["value"] == 100


def test_network_policy_admits_only_gateway_picker_and_prometheus(example_text: str) -> None:
    policy = _by_ref(example_text)["NetworkPolicy models/llama-8b"]["spec"]
    sources = policy["ingress"][0]["from"]
    namespaces = [
        s["namespaceSelector"]["matchLabels"] for s in sources if "namespaceSelector" in s
    ]
    assert namespaces == [
        {"kubernetes.io/metadata.name": "gateway"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]


def _claim(gpus: str) -> dict:
    text = (
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        f"deployments:\n  - name: d\n    pool: p\n    model: m\n    gpus: {gpus}\n"
    )
    objects = {object_ref(o): o for o in render(render_input(text))}
    return objects


def test_a_mig_slice() -> None:
    objects = _claim("{migProfile: 1g.10gb}")
    devices = objects["ResourceClaimTemplate default/d-gpus"]["spec"]["spec"]["devices"]
    exactly = devices["requests"][0]["exactly"]
    assert exactly["deviceClassName"] == "mig.nvidia.com" and exactly["count"] == 1
    assert exactly["selectors"][0]["cel"]["expression"] == (
        'device.attributes["gpu.nvidia.com"].profile == "1g.10gb"'
    )
    assert "constraints" not in devices
    assert not any(ref.startswith("DeviceClass") for ref in objects)


def test_device_class_only_for_drivers_without_one() -> None:
    objects = _claim("{driver: gpu.example.com, count: 1}")
    assert objects["DeviceClass gpu.example.com"]["spec"]["selectors"] == [
        {"cel": {"expression": 'device.driver == "gpu.example.com"'}}
    ]
    exactly = objects["ResourceClaimTemplate default/d-gpus"]["spec"]["spec"]["devices"][
        "requests"
    ][0]["exactly"]
    assert exactly == {
        "deviceClassName": "gpu.example.com",
        "allocationMode": "ExactCount",
        "count": 1,
    }


def test_vllm_tracing_is_opt_in() -> None:
    text = (
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        "observability: {otlp: {endpoint: 'http://collector:4317'}}\n"
        "deployments:\n  - {name: d, pool: p, model: m, vllm: {tracing: true}}\n"
    )
    objects = {object_ref(o): o for o in render(render_input(text))}
    args = objects["Deployment default/d"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--otlp-traces-endpoint") + 1] == "http://collector:4317"


def test_network_policy_follows_the_proxies_or_is_left_out() -> None:
    base = (
        "pools: [{name: p, endpoints: ['http://10.0.0.1:8000']}]\n"
        "deployments:\n  - {name: d, pool: p, model: m, "
    )
    objects = {
        object_ref(o): o
        for o in render(render_input(base + "gateway: {proxyNamespace: envoy-gateway-system}}\n"))
    }
    sources = objects["NetworkPolicy default/d"]["spec"]["ingress"][0]["from"]
    selectors = [s["namespaceSelector"]["matchLabels"] for s in sources if "namespaceSelector" in s]
    assert {"kubernetes.io/metadata.name": "envoy-gateway-system"} in selectors
    without = render(render_input(base + "networkPolicy: false}\n"))
    assert not any(o["kind"] == "NetworkPolicy" for o in without)
