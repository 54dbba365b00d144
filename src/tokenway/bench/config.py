"""The `tokenway bench` YAML file: targets, load, data, SLOs (camelCase keys, no unknown keys).

Every CLI flag sets one of these fields, so a YAML file and flags describe the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from tokenway.bench.client import ClientOptions, Target
from tokenway.bench.datasets import (
    Adapter,
    Dataset,
    JsonlPrompts,
    LengthDist,
    LoraMix,
    MultiTurn,
    SharedPrefix,
    ShareGpt,
    Synthetic,
    tiered_adapters,
)
from tokenway.bench.load import ConcurrencyStage, RateStage, Stage
from tokenway.bench.runner import Plan
from tokenway.bench.stats import Slo
from tokenway.bench.sweep import Sweep
from tokenway.config.base import Section
from tokenway.config.errors import ConfigError, ConfigIssue
from tokenway.config.loader import validate_located
from tokenway.config.units import Duration

Positive = Annotated[float, Field(gt=0)]


class TargetConfig(Section):
    url: Annotated[str, Field(pattern=r"^https?://[^/\s]+")]
    """An http(s) base URL; a trailing /v1 is accepted."""
    name: str = ""
    api_key: str = ""
    headers: dict[str, str] = {}


class Lengths(Section):
    """A token length: a fixed `mean`, or a clipped normal with `stdDev`, `min` and `max`."""

    mean: Annotated[int, Field(ge=1)]
    std_dev: Annotated[float, Field(ge=0)] = 0.0
    min: Annotated[int, Field(ge=1)] = 1
    max: int | None = None

    def dist(self) -> LengthDist:
        return LengthDist(self.mean, self.std_dev, self.min, self.max)


class StageConfig(Section):
    """A rate stage (`rate`) or a concurrency stage (`concurrency`), bounded by time or count."""

    rate: Positive | None = None
    concurrency: Annotated[int, Field(ge=1)] | None = None
    duration: Duration | None = None
    count: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_kind_one_bound(self) -> StageConfig:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("a stage needs exactly one of rate or concurrency")
        if (self.duration is None) == (self.count is None):
            raise ValueError("a stage needs exactly one of duration or count")
        return self


class SweepConfig(Section):
    start: Positive = 1.0
    stage_duration: Duration = 10.0
    kind: Literal["linear", "geometric"] = "geometric"
    step: Positive = 2.0
    max_stages: Annotated[int, Field(ge=1)] = 8


class LoadConfig(Section):
    arrivals: Literal["poisson", "constant"] = "poisson"
    stages: list[StageConfig] = []
    sweep: SweepConfig | None = None
    warmup: Duration = 0.0

    @model_validator(mode="after")
    def _stages_or_sweep(self) -> LoadConfig:
        if bool(self.stages) == (self.sweep is not None):
            raise ValueError("give load.stages or load.sweep (exactly one)")
        return self


class LoraConfig(Section):
    """Adapters by name and weight, or `count` adapters split into tiers by `shares`."""

    adapters: dict[str, Positive] = {}
    count: Annotated[int, Field(ge=1)] | None = None
    shares: list[Positive] = [0.6, 0.3, 0.1]
    prefix: str = "lora-"

    @model_validator(mode="after")
    def _adapters_or_count(self) -> LoraConfig:
        if bool(self.adapters) == (self.count is not None):
            raise ValueError("give lora.adapters or lora.count (exactly one)")
        if self.count is not None and self.count < len(self.shares):
            raise ValueError(
                f"lora.count needs at least one adapter per share ({len(self.shares)})"
            )
        return self

    def build(self) -> tuple[Adapter, ...]:
        if self.adapters:
            return tuple(Adapter(name, weight) for name, weight in self.adapters.items())
        return tiered_adapters(self.count or 1, self.shares, self.prefix)


class DataConfig(Section):
    type: Literal["synthetic", "shared-prefix", "multi-turn", "jsonl", "sharegpt"] = "synthetic"
    input_tokens: Lengths = Lengths(mean=256)
    output_tokens: Lengths = Lengths(mean=128)
    api: Literal["chat", "completion"] = "chat"
    groups: Annotated[int, Field(ge=1)] = 10
    prompts_per_group: Annotated[int, Field(ge=1)] = 10
    system_prompt_tokens: Annotated[int, Field(ge=0)] = 2048
    turns: Annotated[int, Field(ge=1)] = 5
    conversations: Annotated[int, Field(ge=1)] = 8
    file: Path | None = None
    lora: LoraConfig | None = None

    @model_validator(mode="after")
    def _file_when_needed(self) -> DataConfig:
        if self.type in ("jsonl", "sharegpt") and self.file is None:
            raise ValueError(f"data type {self.type} needs data.file")
        return self


class SloConfig(Section):
    ttft: Duration | None = None
    tpot: Duration | None = None
    itl: Duration | None = None
    ntpot: Duration | None = None
    request_latency: Duration | None = None


class BenchConfig(Section):
    targets: Annotated[list[TargetConfig], Field(min_length=1)]
    model: str = ""
    output: Path = Path("bench-results")
    stream: bool = True
    timeout: Duration = 300.0
    max_connections: Annotated[int, Field(ge=1)] = 4096
    tenant_header: str = "x-gateway-inference-fairness-id"
    ignore_eos: bool = True
    seed: int = 0
    load: LoadConfig = LoadConfig(stages=[StageConfig(rate=1.0, duration=60.0)])
    data: DataConfig = DataConfig()
    slo: SloConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> BenchConfig:
        names = [t.name for t in self.named_targets()]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        return self

    def named_targets(self) -> list[Target]:
        return [
            Target(
                t.name or (f"target-{i}" if len(self.targets) > 1 else "target"),
                t.url,
                t.api_key,
                tuple(t.headers.items()),
            )
            for i, t in enumerate(self.targets)
        ]

    def client_options(self) -> ClientOptions:
        return ClientOptions(
            stream=self.stream,
            timeout=self.timeout,
            max_connections=self.max_connections,
            tenant_header=self.tenant_header,
            ignore_eos=self.ignore_eos,
            model=self.model,
        )

    def plan(self) -> Plan:
        load = self.load
        if load.sweep is not None:
            s = load.sweep
            sweep = Sweep(s.start, s.stage_duration, s.kind, s.step, s.max_stages)
            return Plan(sweep=sweep, warmup=load.warmup, seed=self.seed)
        stages: list[Stage] = [
            RateStage(st.rate, st.duration, st.count, load.arrivals)
            if st.rate is not None
            else ConcurrencyStage(st.concurrency or 1, st.duration, st.count)
            for st in load.stages
        ]
        return Plan(stages=tuple(stages), warmup=load.warmup, seed=self.seed)

    def dataset(self) -> Dataset:
        d = self.data
        chat = d.api == "chat"
        inputs, outputs = d.input_tokens.dist(), d.output_tokens.dist()
        base: Dataset
        if d.type == "synthetic":
            base = Synthetic(inputs, outputs, chat, self.model)
        elif d.type == "shared-prefix":
            base = SharedPrefix(
                d.groups,
                d.prompts_per_group,
                d.system_prompt_tokens,
                inputs,
                outputs,
                chat,
                self.model,
            )
        elif d.type == "multi-turn":
            base = MultiTurn(
                d.turns, d.conversations, d.system_prompt_tokens, inputs, outputs, self.model
            )
        elif d.type == "jsonl":
            base = JsonlPrompts(d.file or Path(), d.output_tokens.mean, self.model)
        else:
            base = ShareGpt(d.file or Path(), self.model)
        return LoraMix(base, d.lora.build()) if d.lora is not None else base

    def goodput_slo(self) -> Slo | None:
        if self.slo is None:
            return None
        s = self.slo
        return Slo(s.ttft, s.tpot, s.itl, s.ntpot, s.request_latency)


def parse_bench_config(data: dict[str, Any], source: str, node: yaml.Node | None) -> BenchConfig:
    """Validate a bench config mapping; ConfigError issues name the source, line and field."""
    return validate_located(BenchConfig, data, node, source)


def load_bench_config(path: Path | None, overrides: dict[str, Any]) -> BenchConfig:
    """The YAML file at `path` (if any) with `overrides` (from flags) merged over its keys."""
    data: dict[str, Any] = {}
    node = None
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            loaded = yaml.safe_load(text) or {}
        except OSError as exc:
            raise ConfigError(
                [ConfigIssue(source, None, "", f"cannot read: {exc.strerror}")]
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {exc}")]) from None
        if not isinstance(loaded, dict):
            raise ConfigError([ConfigIssue(source, 1, "", "the bench file must be a mapping")])
        data = loaded
    return parse_bench_config(_merge(data, overrides), source, node)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
