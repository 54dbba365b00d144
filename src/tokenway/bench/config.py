"""The `tokenway bench` YAML file: targets, load, data, SLOs (camelCase keys, no unknown keys).

Every CLI flag sets one of these fields, so a YAML file and flags describe the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

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
PositiveDuration = Annotated[Duration, Field(gt=0)]
_DEFAULT_STAGE = {"rate": 1.0, "duration": 60.0}


class TargetConfig(Section):
    url: Annotated[str, Field(pattern=r"^https?://[^/\s]+")]
    """An http(s) base URL; a trailing /v1 is accepted."""
    name: str = ""
    api_key: str = ""
    headers: dict[str, str] = {}

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        # The name is also a folder under the output folder: it must stay inside it.
        if value in (".", "..") or "/" in value or "\\" in value:
            raise ValueError("a target name cannot contain / or \\, or be . or ..")
        return value


class Lengths(Section):
    """A token length: a fixed `mean`, or a clipped normal with `stdDev`, `min` and `max`."""

    mean: Annotated[int, Field(ge=1)]
    std_dev: Annotated[float, Field(ge=0)] = 0.0
    min: Annotated[int, Field(ge=1)] = 1
    max: int | None = None

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max ({value}) is below min ({low})")
        return value

    def dist(self) -> LengthDist:
        return LengthDist(self.mean, self.std_dev, self.min, self.max)


class StageConfig(Section):
    """A rate stage (`rate`) or a concurrency stage (`concurrency`), bounded by time or count."""

    rate: Positive | None = None
    concurrency: Annotated[int, Field(ge=1)] | None = None
    duration: PositiveDuration | None = None
    count: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_kind_one_bound(self) -> StageConfig:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("a stage needs exactly one of rate or concurrency")
        if (self.duration is None) == (self.count is None):
            raise ValueError("a stage needs exactly one of duration or count")
        if self.rate is not None and self.duration is not None:
            _check_expected(self.rate, self.duration, "rate x duration")
        return self


def _check_expected(rate: float, duration: float, what: str) -> None:
    # fewer than one expected request leaves the stage empty, or at best one lone request
    if rate * duration < 1:
        raise ValueError(f"{what} is {rate * duration:g}: the stage would send under 1 request")


class SweepConfig(Section):
    start: Positive = 1.0
    stage_duration: PositiveDuration = 15.0
    kind: Literal["linear", "geometric"] = "geometric"
    step: Positive = 2.0
    max_stages: Annotated[int, Field(ge=1)] = 8

    @field_validator("step")
    @classmethod
    def _step_grows(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("kind", "geometric") == "geometric" and value <= 1:
            raise ValueError(
                f"a geometric sweep multiplies the rate by step: {value:g} must be > 1"
            )
        return value

    @model_validator(mode="after")
    def _first_stage_sends(self) -> SweepConfig:
        _check_expected(self.start, self.stage_duration, "start x stageDuration")
        return self


class LoadConfig(Section):
    arrivals: Literal["poisson", "constant"] = "poisson"
    stages: list[StageConfig] = []
    sweep: SweepConfig | None = None
    warmup: Duration = 0.0

    @model_validator(mode="before")
    @classmethod
    def _default_stage(cls, data: Any) -> Any:
        """Without stages or a sweep, one stage of 1 req/s for 60 s: `arrivals` or `warmup`
        alone (flag or file) changes how that stage runs, not whether there is one."""
        if isinstance(data, dict) and not {"stages", "sweep"} & data.keys():
            return {**data, "stages": [_DEFAULT_STAGE]}
        return data

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
    timeout: PositiveDuration = 300.0
    max_connections: Annotated[int, Field(ge=1)] = 4096
    tenant_header: str = "x-gateway-inference-fairness-id"
    ignore_eos: bool = True
    seed: int = 0
    load: LoadConfig = LoadConfig()
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
            sweep = Sweep(s.start, s.stage_duration, s.kind, s.step, s.max_stages, load.arrivals)
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


def load_bench_config(
    path: Path | None, overrides: dict[str, Any], api_key: str | None = None
) -> BenchConfig:
    """The YAML file at `path` (if any) with `overrides` (from flags) merged over its keys, and
    `api_key` (--api-key) replacing every target's apiKey, the file's targets included.

    Issues in values that came from flags name the command line instead of a file line."""
    data: dict[str, Any] = {}
    node = None
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            loaded = yaml.safe_load(text) or {}
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError([ConfigIssue(source, None, "", f"cannot read: {reason}")]) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {exc}")]) from None
        if not isinstance(loaded, dict):
            raise ConfigError([ConfigIssue(source, 1, "", "the bench file must be a mapping")])
        data = loaded
    merged = _merge(_drop_replaced_load(data, overrides), overrides)
    targets = merged.get("targets")
    if api_key is not None and isinstance(targets, list):
        merged["targets"] = [
            {**t, "apiKey": api_key} if isinstance(t, dict) else t for t in targets
        ]
    try:
        return parse_bench_config(merged, source, node)
    except ConfigError as exc:
        flagged = _flag_fields(overrides)
        raise ConfigError([_blame_flags(issue, flagged) for issue in exc.issues]) from None


def _drop_replaced_load(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Stages and a sweep exclude each other: flags that set one replace the file's other."""
    load, flag_load = data.get("load"), overrides.get("load")
    if not isinstance(load, dict) or not isinstance(flag_load, dict):
        return data
    other = {"stages": "sweep", "sweep": "stages"}
    replaced = {other[key] for key in flag_load if key in other}
    return {**data, "load": {k: v for k, v in load.items() if k not in replaced}}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flag_fields(overrides: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the values flags set (a list is one value), as issues name fields."""
    fields = set()
    for key, value in overrides.items():
        name = f"{prefix}.{key}" if prefix else key
        fields |= _flag_fields(value, name) if isinstance(value, dict) else {name}
    return fields


def _blame_flags(issue: ConfigIssue, flagged: set[str]) -> ConfigIssue:
    if any(issue.field == f or issue.field.startswith((f"{f}.", f"{f}[")) for f in flagged):
        return ConfigIssue("command line", None, issue.field, issue.message)
    return issue
