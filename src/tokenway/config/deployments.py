"""The `deployments:` section: model servers on Kubernetes, with GPUs in plain terms."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from tokenway.config.base import Section
from tokenway.config.units import ByteSize

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""DNS-1035: Service names (and names they are made from) must start with a letter."""

Topology = Literal["any", "pcieRoot"]
"""How the devices of one claim relate: "any" (one node; on NVLink systems that is the NVLink
domain) or "pcieRoot" (behind one PCIe root)."""


class GpuOption(Section):
    """One acceptable kind of GPU: a product name or an architecture family.

    `count` overrides the deployment's count for this option ("H200, else 2x H100").
    """

    product: str | None = None
    family: str | None = None
    count: int | None = Field(default=None, ge=1, le=64)
    min_memory: ByteSize | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> GpuOption:
        if (self.product is None) == (self.family is None):
            raise ValueError("a GPU option names exactly one of product or family")
        return self


class GpuSpec(Section):
    """GPU needs, rendered as a DRA ResourceClaimTemplate (resource.k8s.io/v1)."""

    count: int = Field(default=1, ge=1, le=64)
    prefer: list[GpuOption] = Field(default=[], max_length=8)
    min_memory: ByteSize | None = None
    topology: Topology = "any"
    mig_profile: str | None = Field(default=None, pattern=r"^\d+g\.\d+gb(\+\w+)?$")
    driver: str = "gpu.nvidia.com"

    @model_validator(mode="after")
    def _mig_alone(self) -> GpuSpec:
        if self.mig_profile is not None and self.prefer:
            raise ValueError("migProfile cannot be combined with prefer alternatives")
        if self.mig_profile is not None and self.count > 1:
            # CUDA gives a process one MIG slice; vLLM would see one GPU and exit.
            raise ValueError(
                "a process can use one MIG slice: migProfile needs count 1 (scale with replicas)"
            )
        if self.topology == "pcieRoot" and self.mig_profile is not None:
            raise ValueError("a single MIG slice has no topology; use topology any")
        return self

    def counts(self) -> list[int]:
        """The device count of each alternative, in order (one entry without alternatives)."""
        return [o.count or self.count for o in self.prefer] or [self.count]


class Adapter(Section):
    """A LoRA adapter loaded at start-up: a Hugging Face repository id or a path in the pod."""

    name: str = Field(min_length=1)
    source: str = Field(min_length=1)


class VllmSettings(Section):
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_model_len: int | None = Field(default=None, ge=1)
    max_loras: int | None = Field(default=None, ge=1)
    max_lora_rank: int | None = Field(default=None, ge=1)
    prefix_caching: bool = True
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    tracing: bool = False
    """Send vLLM's own spans to observability.otlp. Off by default: the stock vllm-openai
    image does not ship the OpenTelemetry packages, and vLLM exits at start-up without them."""
    extra_args: list[str] = []


class Replicas(Section):
    min: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ValueError("replicas.min exceeds replicas.max")
        return self


class Autoscale(Section):
    """KEDA triggers: output tokens/s per replica and/or mean saturation (1.0 = saturated)."""

    tokens_per_second_per_replica: float | None = Field(default=None, gt=0)
    saturation: float | None = Field(default=None, gt=0, le=2)
    scale_to_zero: bool = False
    polling_interval: int = Field(default=15, ge=1)
    cooldown_period: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _a_signal(self) -> Autoscale:
        if self.tokens_per_second_per_replica is None and self.saturation is None:
            raise ValueError("autoscale needs tokensPerSecondPerReplica and/or saturation")
        return self


class GatewayRef(Section):
    name: str = "inference-gateway"
    namespace: str | None = None
    proxy_namespace: str | None = Field(default=None, pattern=DNS_LABEL)
    """Where the Gateway's proxy pods run when not in its namespace (Envoy Gateway by default
    runs them in envoy-gateway-system); the NetworkPolicy admits traffic from there."""


class EppDeployment(Section):
    """The pods of this pool's endpoint picker (how the picker behaves: the `picker:` section)."""

    image: str = "ghcr.io/tokenway/tokenway:0.1.0"
    replicas: int = Field(default=1, ge=1)


class ResourceSettings(Section):
    cpu: str = "4"
    memory: ByteSize = 32 * 2**30
    shm: ByteSize = 8 * 2**30


class DeploymentSpec(Section):
    """One model server Deployment serving the pool `pool`; at most one per pool."""

    name: str = Field(pattern=SERVICE_NAME, max_length=40)
    pool: str
    namespace: str = Field(default="default", pattern=DNS_LABEL, max_length=63)
    image: str = "vllm/vllm-openai:v0.11.0"
    model: str = Field(min_length=1)
    served_names: list[str] = []
    adapters: list[Adapter] = []
    vllm: VllmSettings = VllmSettings()
    gpus: GpuSpec = GpuSpec()
    replicas: Replicas = Replicas()
    autoscale: Autoscale | None = None
    resources: ResourceSettings = ResourceSettings()
    port: int = Field(default=8000, ge=1, le=65535)
    gateway: GatewayRef = GatewayRef()
    network_policy: bool = True
    """Render a NetworkPolicy admitting only the gateway path. Turn off where the proxies are
    not pods in the cluster (GKE's managed gateways), or the policy would drop their traffic."""
    epp: EppDeployment = EppDeployment()
    hf_token_secret: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        if self.replicas.min == 0 and not (self.autoscale and self.autoscale.scale_to_zero):
            raise ValueError("replicas.min 0 needs autoscale.scaleToZero")
        if len({a.name for a in self.adapters}) != len(self.adapters):
            raise ValueError("adapter names must be unique")
        return self

    def names_served(self) -> list[str]:
        """What vLLM answers to in "model": the explicit served names, else the model id."""
        return list(self.served_names) or [self.model]


def _check_references(
    deployments: list[DeploymentSpec], info: ValidationInfo
) -> list[DeploymentSpec]:
    pools = {p.name for p in info.data.get("pools", [])}
    problems = []
    seen: dict[str, str] = {}
    for index, spec in enumerate(deployments):
        where = f"deployments[{index}]"
        if spec.pool not in pools:
            problems.append(f"{where}.pool: unknown pool {spec.pool!r}")
        if spec.pool in seen:
            problems.append(
                f"{where}.pool: pool {spec.pool!r} already served by {seen[spec.pool]!r}"
            )
        seen.setdefault(spec.pool, spec.name)
    names = [d.name for d in deployments]
    if len(set(names)) != len(names):
        problems.append("deployments: names must be unique")
    if problems:
        raise ValueError("; ".join(problems))
    return deployments


Deployments = Annotated[list[DeploymentSpec], AfterValidator(_check_references)]
"""The deployments list, checked against the pools declared before it."""
