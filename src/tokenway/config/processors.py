"""The `processors:` section: ordered payload processors (guards, redaction, routing, CEL).

Each entry names a built-in `type`, the `phase` it runs in, a `match` on model, team and
headers, a `timeout` and a `failure` mode; the rest of its keys are that type's parameters.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

import cel
from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from tokenway.config.base import Section
from tokenway.config.units import Duration

Phase = Literal["pre-routing", "request", "response"]
PiiKind = Literal[
    "email", "phone", "credit-card", "iban", "us-ssn", "uk-nino", "es-dni", "api-key", "secret"
]
PII_KINDS: tuple[PiiKind, ...] = (
    "email", "phone", "credit-card", "iban", "us-ssn", "uk-nino", "es-dni", "api-key", "secret"
)  # fmt: skip

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Globs = Annotated[list[str], BeforeValidator(_as_list)]
"""One glob (`*`, `?`) or a list of them; a value matches when any glob does."""


class ProcessorMatch(Section):
    """Which requests a processor sees; every given condition must hold (empty: all requests)."""

    model: Globs = []
    team: Globs = []
    headers: dict[str, str] = {}
    """Lower-case header name -> glob of its value."""

    @field_validator("headers")
    @classmethod
    def _lower(cls, value: dict[str, str]) -> dict[str, str]:
        return {name.lower(): glob for name, glob in value.items()}


class _Processor(Section):
    name: str = Field(pattern=_NAME, max_length=63)
    phase: Phase = "request"
    match: ProcessorMatch = ProcessorMatch()
    timeout: Duration = Field(default=0.05, gt=0)
    failure: Literal["open", "closed"] = "closed"
    """What a processor error or timeout does: `closed` rejects (503), `open` lets it pass."""

    phases: ClassVar[tuple[Phase, ...]] = ("pre-routing", "request")

    @model_validator(mode="after")
    def _phase_supported(self) -> _Processor:
        if self.phase not in self.phases:
            kind = getattr(self, "type", "?")
            raise ValueError(f"a {kind} processor runs in phase {' or '.join(self.phases)}")
        return self


class EntropyRule(Section):
    """Unlabelled secrets: long tokens with letters and digits whose entropy is high."""

    min_length: int = Field(default=32, ge=16, le=512)
    min_bits_per_char: float = Field(default=4.0, gt=0, le=6.0)


class PiiSpec(_Processor):
    """Detect personal data and secrets in prompts (or answers) and redact or reject them."""

    type: Literal["pii"]
    action: Literal["redact", "reject"] = "redact"
    kinds: list[PiiKind] = list(PII_KINDS)
    placeholder: str = Field(default="[{kind}]", max_length=64)
    """Replacement text; `{kind}` becomes the kind found (email, phone, ...)."""
    entropy: EntropyRule = EntropyRule()
    roles: list[str] = ["system", "user", "assistant", "tool"]
    """Chat roles whose message contents are scanned."""

    phases = ("pre-routing", "request", "response")

    @field_validator("placeholder")
    @classmethod
    def _placeholder(cls, value: str) -> str:
        if re.sub(r"\{kind\}", "", value).count("{") or "}" in re.sub(r"\{kind\}", "", value):
            raise ValueError("the placeholder may only contain the field {kind}")
        return value


class InjectionRule(Section):
    """A phrase rule: any of `phrases` (whole words, case-insensitive) or a `pattern` regex."""

    name: str = Field(pattern=_NAME, max_length=63)
    phrases: list[str] = []
    pattern: str | None = None
    score: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _one_form(self) -> InjectionRule:
        if bool(self.phrases) == (self.pattern is not None):
            raise ValueError("give exactly one of phrases or pattern")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
        return self


class InjectionSpec(_Processor):
    """Score prompts against injection and jailbreak rules; reject (or flag) above a threshold."""

    type: Literal["injection"]
    threshold: float = Field(default=0.5, gt=0, le=1)
    action: Literal["reject", "flag"] = "reject"
    builtin_rules: bool = True
    rules: list[InjectionRule] = []
    roles: list[str] = ["user", "tool"]


class MaxTokensCap(Section):
    """max_tokens caps: `teams` override `default`; `onExceed` clamps the request or rejects it."""

    default: int | None = Field(default=None, ge=1)
    teams: dict[str, int] = {}
    on_exceed: Literal["clamp", "reject"] = "clamp"

    @field_validator("teams")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        if any(cap < 1 for cap in value.values()):
            raise ValueError("caps must be at least 1")
        return value


class LimitsSpec(_Processor):
    """Request-shape limits: prompt tokens, message count, forbidden parameters, max_tokens."""

    type: Literal["limits"]
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    max_messages: int | None = Field(default=None, ge=1)
    forbidden_params: list[str] = []
    max_tokens: MaxTokensCap | None = None


class SemanticRoute(Section):
    """A destination model and what requests for it look like (keywords, example utterances)."""

    model: str = Field(min_length=1)
    keywords: list[str] = []
    examples: list[str] = []
    default: bool = False


class SemanticRouterSpec(_Processor):
    """Choose the model by content: keywords first, then a classifier trained on the examples."""

    type: Literal["semantic-router"]
    phase: Phase = "pre-routing"
    routes: list[SemanticRoute] = Field(min_length=1)
    threshold: float = Field(default=0.1, ge=0, le=1)
    """Minimum classifier confidence (top score's margin over the runner-up); below: default."""
    max_chars: int = Field(default=16_000, ge=100)
    """Only the first max_chars of the last user message are classified (bounded work)."""

    phases = ("pre-routing",)

    @model_validator(mode="after")
    def _routes(self) -> SemanticRouterSpec:
        defaults = [r for r in self.routes if r.default]
        if len(defaults) > 1:
            raise ValueError("at most one route can be the default")
        if not defaults:
            raise ValueError("one route must be the default (default: true)")
        if not any(r.examples or r.keywords for r in self.routes):
            raise ValueError("give examples or keywords for at least one route")
        return self


class CelReject(Section):
    status: Literal[400, 403] = 400
    message: str = Field(min_length=1, max_length=256)


class CelRule(Section):
    """When the CEL expression `when` is true: set headers, choose a model, or reject."""

    name: str = Field(pattern=_NAME, max_length=63)
    when: str = Field(min_length=1)
    model: str | None = None
    set_headers: dict[str, str] = {}
    reject: CelReject | None = None

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            cel.compile(value)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise ValueError(f"invalid CEL expression: {first}") from None
        return value

    @model_validator(mode="after")
    def _effect(self) -> CelRule:
        if self.model is None and not self.set_headers and self.reject is None:
            raise ValueError("a rule needs model, setHeaders or reject")
        return self


class CelSpec(_Processor):
    """Rules over `body`, `headers`, `model` and `team` in the Common Expression Language."""

    type: Literal["cel"]
    rules: list[CelRule] = Field(min_length=1)


ProcessorSpec = Annotated[
    PiiSpec | InjectionSpec | LimitsSpec | SemanticRouterSpec | CelSpec,
    Field(discriminator="type"),
]


def _unique_names(processors: list[ProcessorSpec]) -> list[ProcessorSpec]:
    seen: set[str] = set()
    for spec in processors:
        if spec.name in seen:
            raise ValueError(f"duplicate processor name {spec.name!r}")
        seen.add(spec.name)
    return processors


Processors = Annotated[list[ProcessorSpec], AfterValidator(_unique_names)]
"""The ordered processor list of the platform file."""
