"""CRD openAPIV3Schema -> JSON Schema that validates strictly, as `kubectl --validate=strict`.

Kubernetes extensions are translated: int-or-string becomes anyOf, nullable admits null,
objects without preserve-unknown-fields reject unknown keys, and the object's metadata gets the
name rules the API server enforces. x-kubernetes-validations (CEL) are kept for the validator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

NAME_RULES: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
    "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_SUBDOMAIN},
    "labels": {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
    },
}
"""What the API server checks in every object's metadata beyond its schema."""

OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        **NAME_RULES,
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def translate(schema: dict[str, Any]) -> dict[str, Any]:
    """One structural schema node (and its children) as JSON Schema."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if "properties" in schema:
        out["properties"] = {k: translate(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = translate(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = translate(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [translate(s) for s in schema[key]]
    if "not" in schema:
        out["not"] = translate(schema["not"])
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    elif schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "x-kubernetes-validations" in schema:
        out["x-kubernetes-validations"] = schema["x-kubernetes-validations"]
    return out


def object_schema(open_api: dict[str, Any]) -> dict[str, Any]:
    schema = translate(open_api)
    properties = dict(schema.get("properties", {}))
    properties["metadata"] = OBJECT_META
    return {**schema, "properties": properties}


class CrdError(ValueError):
    """A CRD directory or file that cannot be read; the message names the path."""


@dataclass(frozen=True)
class CrdSchemas:
    """JSON Schemas by (apiVersion, kind), from CRD files; `sources` names the file of each."""

    schemas: dict[tuple[str, str], dict[str, Any]]
    sources: dict[tuple[str, str], str]
    scopes: dict[tuple[str, str], str]

    def get(self, api_version: str, kind: str) -> dict[str, Any] | None:
        return self.schemas.get((api_version, kind))


def _read(path: Path) -> list[Any]:
    # CRDs run to megabytes; libyaml parses them an order of magnitude faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
    except OSError as exc:
        raise CrdError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CrdError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise CrdError(f"{where}: invalid YAML: {problem}") from None


def _documents(paths: Iterable[Path]) -> Iterable[tuple[Path, dict[str, Any]]]:
    for path in paths:
        for doc in _read(path):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                yield path, doc


def load_crds(directory: Path) -> CrdSchemas:
    """Every served version of every CRD in *.yaml / *.yml files under `directory`.

    Raises CrdError when `directory` is not one, or a file is not readable YAML or not a CRD."""
    if not directory.is_dir():
        missing = "not a directory" if directory.exists() else "no such directory"
        raise CrdError(f"{directory}: {missing}")
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    sources: dict[tuple[str, str], str] = {}
    scopes: dict[tuple[str, str], str] = {}
    paths = sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])
    for path, crd in _documents(paths):
        try:
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True) or "schema" not in version:
                    continue
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = object_schema(version["schema"]["openAPIV3Schema"])
                sources[key] = path.name
                scopes[key] = spec["scope"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise CrdError(f"{path}: not a valid CustomResourceDefinition ({exc!r})") from None
    return CrdSchemas(schemas, sources, scopes)
