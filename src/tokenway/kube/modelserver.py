"""The model server of a deployment: vLLM Deployment with its GPU claim, Service and PDB."""

from __future__ import annotations

import shlex
from typing import Any

from tokenway.config.deployments import DeploymentSpec
from tokenway.kube.dra import claim_template_name
from tokenway.kube.objects import (
    DEPLOYMENT_LABEL,
    ENGINE_LABEL,
    POOL_LABEL,
    Manifest,
    labels,
    manifest,
    meta,
    quantity,
)

COMPONENT = "model-server"
CLAIM = "gpus"
DEVICE_COUNT = "\"$(python3 -c 'import torch; print(torch.cuda.device_count())')\""
"""Shell text for the number of GPUs the pod was given (vLLM images always ship torch)."""


def pod_labels(spec: DeploymentSpec) -> dict[str, str]:
    """The labels the InferencePool, Service, PDB and monitors select model-server pods by."""
    return {POOL_LABEL: spec.pool, DEPLOYMENT_LABEL: spec.name, ENGINE_LABEL: "vllm"}


def vllm_args(spec: DeploymentSpec, tensor_parallel: str, otlp: str | None) -> list[str]:
    """`vllm serve` arguments; tensor parallelism equals the number of GPUs claimed."""
    settings = spec.vllm
    args = [spec.model, "--host", "0.0.0.0", "--port", str(spec.port)]
    args += ["--served-model-name", *spec.names_served()]
    args += ["--tensor-parallel-size", tensor_parallel]
    if settings.prefix_caching:
        args.append("--enable-prefix-caching")
    if settings.max_num_seqs is not None:
        args += ["--max-num-seqs", str(settings.max_num_seqs)]
    if settings.max_model_len is not None:
        args += ["--max-model-len", str(settings.max_model_len)]
    if settings.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    if spec.adapters:
        args.append("--enable-lora")
        args += ["--max-loras", str(settings.max_loras or len(spec.adapters))]
        if settings.max_lora_rank is not None:
            args += ["--max-lora-rank", str(settings.max_lora_rank)]
        args += ["--lora-modules", *(f"{a.name}={a.source}" for a in spec.adapters)]
    if otlp is not None and settings.tracing:
        args += ["--otlp-traces-endpoint", otlp]
    return [*args, *settings.extra_args]


def _command(spec: DeploymentSpec, otlp: str | None) -> tuple[list[str], list[str]]:
    counts = set(spec.gpus.counts())
    if len(counts) == 1:
        return ["vllm", "serve"], vllm_args(spec, str(counts.pop()), otlp)
    # Alternatives with different GPU counts: the pod learns which one it got only at run time.
    marker = "TP_FROM_DEVICES"
    line = shlex.join(["vllm", "serve", *vllm_args(spec, marker, otlp)])
    line = line.replace(marker, DEVICE_COUNT)
    return ["/bin/sh", "-c"], [f"exec {line}"]


def _probe(path: str, port: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _container(spec: DeploymentSpec, otlp: str | None) -> dict[str, Any]:
    command, args = _command(spec, otlp)
    env: list[dict[str, Any]] = [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}]
    if spec.hf_token_secret is not None:
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": spec.hf_token_secret, "key": "token"}},
            }
        )
    memory = quantity(spec.resources.memory)
    return {
        "name": "vllm",
        "image": spec.image,
        "command": command,
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        # Loading weights takes minutes; the startup probe holds liveness off until /health answers.
        "startupProbe": _probe("/health", "http", 10, 180),
        "readinessProbe": _probe("/health", "http", 5, 3),
        "livenessProbe": _probe("/health", "http", 10, 6),
        "resources": {
            "requests": {"cpu": spec.resources.cpu, "memory": memory},
            "limits": {"memory": memory},
            "claims": [{"name": CLAIM}],
        },
        "volumeMounts": [
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "cache", "mountPath": "/root/.cache/huggingface"},
        ],
    }


def deployment(spec: DeploymentSpec, otlp_endpoint: str | None) -> Manifest:
    selector = pod_labels(spec)
    template_labels = {**labels(COMPONENT, spec.name), **selector}
    pod_spec = {
        "terminationGracePeriodSeconds": 120,
        "containers": [_container(spec, otlp_endpoint)],
        "resourceClaims": [{"name": CLAIM, "resourceClaimTemplateName": claim_template_name(spec)}],
        "volumes": [
            {
                "name": "shm",
                "emptyDir": {"medium": "Memory", "sizeLimit": quantity(spec.resources.shm)},
            },
            {"name": "cache", "emptyDir": {}},
        ],
    }
    body: dict[str, Any] = {}
    if spec.autoscale is None:
        # With an autoscaler the replica count is left out, so GitOps syncs do not fight it.
        body["replicas"] = spec.replicas.min
    return manifest(
        "apps/v1",
        "Deployment",
        meta(spec.name, spec.namespace, template_labels),
        spec={
            **body,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": template_labels}, "spec": pod_spec},
        },
    )


def service(spec: DeploymentSpec) -> Manifest:
    return manifest(
        "v1",
        "Service",
        meta(spec.name, spec.namespace, {**labels(COMPONENT, spec.name), **pod_labels(spec)}),
        spec={
            "selector": pod_labels(spec),
            "ports": [{"name": "http", "port": spec.port, "targetPort": "http", "protocol": "TCP"}],
        },
    )


def disruption_budget(spec: DeploymentSpec) -> Manifest:
    """Voluntary evictions take one replica at a time: each restart reloads weights for minutes."""
    return manifest(
        "policy/v1",
        "PodDisruptionBudget",
        meta(spec.name, spec.namespace, labels(COMPONENT, spec.name)),
        spec={"maxUnavailable": 1, "selector": {"matchLabels": pod_labels(spec)}},
    )
