"""`tokenway render --check`: every rendered object against its schema, with errors naming
the object and the field.

Built-in kinds use the Kubernetes 1.34 strict JSON schemas shipped by kubernetes-validate;
custom resources use the openAPIV3Schema of the CRD files given (see crd_schema), including
their x-kubernetes-validations CEL rules where the CEL library can evaluate them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cel
import jsonschema
import kubernetes_validate.utils as kv
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from tokenway.kube.crd_schema import NAME_RULES, CrdSchemas
from tokenway.kube.objects import Manifest
from tokenway.kube.render import object_ref

KUBERNETES_VERSION = "1.34"


@dataclass(frozen=True, slots=True)
class Problem:
    """One schema violation: which object, which field, what is wrong."""

    object: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.field or '<root>'}: {self.message}"


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    cel_rules_unevaluated: int = 0


def field_path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _builtin_schema_name(api_version: str, kind: str) -> str:
    # kubernetes-validate names files <kind>-<group prefix>-<version>.json ("apps/v1" -> apps-v1).
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{api}.json"


class _CelRules:
    """The x-kubernetes-validations keyword: each rule is CEL over `self` (the node)."""

    def __init__(self, report: CheckReport) -> None:
        self._report = report

    def __call__(
        self, validator: Validator, rules: list[dict[str, Any]], instance: Any, schema: Any
    ) -> Iterator[jsonschema.ValidationError]:
        for rule in rules:
            expression = rule["rule"]
            if "oldSelf" in expression:
                continue  # transition rules compare with the stored object; nothing to compare
            try:
                result = cel.evaluate(expression, {"self": instance})
            except (KeyError, TypeError, ValueError, RuntimeError):
                # Kubernetes CEL extensions this library lacks (isURL, format...) or optional
                # fields a rule reaches without has(): counted and reported, never guessed.
                self._report.cel_rules_unevaluated += 1
                continue
            if result is False:
                message = rule.get("message") or f"failed rule: {expression}"
                yield jsonschema.ValidationError(message)


class Checker:
    """Validates rendered objects; built-in schemas are cached per kind."""

    def __init__(self, crds: CrdSchemas | None, version: str = KUBERNETES_VERSION) -> None:
        self._crds = crds
        self._dir = f"kubernetes-json-schema/v{self._schema_version(version)}-local-strict"
        self._definitions = Resource.from_contents(
            kv.schema_contents(f"{self._dir}/_definitions.json", version)
        )
        self._version = version
        self._cache: dict[tuple[str, str], Validator | None] = {}
        self._names = jsonschema.Draft4Validator({"type": "object", "properties": NAME_RULES})

    @staticmethod
    def _schema_version(version: str) -> str:
        known = [v for v in kv.all_versions() if kv.major_minor(v) == version]
        if not known:
            raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {version}")
        return known[-1]

    def _builtin(self, api_version: str, kind: str) -> Validator | None:
        key = (api_version, kind)
        if key not in self._cache:
            try:
                contents = kv.schema_contents(
                    f"{self._dir}/{_builtin_schema_name(api_version, kind)}", self._version
                )
            except FileNotFoundError:
                self._cache[key] = None
            else:
                registry: Registry = Resource.from_contents(contents) @ Registry()
                registry = self._definitions @ registry
                self._cache[key] = jsonschema.Draft202012Validator(contents, registry=registry)
        return self._cache[key]

    def _custom(self, api_version: str, kind: str, report: CheckReport) -> Validator | None:
        schema = self._crds.get(api_version, kind) if self._crds is not None else None
        if schema is None:
            return None
        cls = jsonschema.validators.extend(
            jsonschema.Draft4Validator, {"x-kubernetes-validations": _CelRules(report)}
        )
        return cls(schema)

    def _scope(self, name: str, api_version: str, kind: str, obj: Manifest) -> list[Problem]:
        scope = self._crds.scopes.get((api_version, kind)) if self._crds is not None else None
        namespaced = "namespace" in obj["metadata"]
        if scope == "Namespaced" and not namespaced:
            return [Problem(name, "metadata.namespace", f"{kind} is namespaced; give a namespace")]
        if scope == "Cluster" and namespaced:
            return [Problem(name, "metadata.namespace", f"{kind} is cluster-scoped")]
        return []

    def _problems(self, validator: Validator, obj: Manifest, name: str) -> list[Problem]:
        found = [(tuple(e.absolute_path), e.message) for e in validator.iter_errors(obj)]
        if isinstance(validator, jsonschema.Draft202012Validator):
            # Built-in schemas leave metadata rules to the API server; check them here.
            found += [
                (("metadata", *e.absolute_path), e.message)
                for e in self._names.iter_errors(obj.get("metadata", {}))
            ]
        found.sort(key=lambda item: [str(p) for p in item[0]])
        return [Problem(name, field_path(path), message) for path, message in found]

    def check(self, objects: Sequence[Manifest]) -> CheckReport:
        report = CheckReport()
        for obj in objects:
            name = object_ref(obj)
            api_version, kind = obj["apiVersion"], obj["kind"]
            validator = self._builtin(api_version, kind) or self._custom(api_version, kind, report)
            if validator is None:
                hint = "in the CRD directory" if self._crds is not None else "(pass --crds DIR)"
                report.problems.append(
                    Problem(name, "apiVersion", f"no schema for {api_version} {kind} {hint}")
                )
                continue
            report.checked += 1
            report.problems += self._problems(validator, obj, name)
            report.problems += self._scope(name, api_version, kind, obj)
        return report
