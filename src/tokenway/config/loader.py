"""Loading a platform file: YAML with line numbers, pydantic validation, errors that point home."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tokenway.config.errors import ConfigError, ConfigIssue
from tokenway.config.platform import PlatformConfig

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def line_map(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            line_map(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            line_map(item, (*path, index), lines)


def nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def field_name(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_platform(text: str, source: str = "<string>") -> PlatformConfig:
    """Validate platform-file text; raises ConfigError naming file, line and field of each issue."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(source, 1, "", "the platform file must be a mapping")])
    return validate_located(PlatformConfig, data, node, source)


def validate_located(model: type[M], data: object, node: yaml.Node | None, source: str) -> M:
    """Validate `data` (parsed from the YAML `node`) as `model`; ConfigError issues carry the
    source, the line of the offending key and the dotted field path."""
    lines: dict[Loc, int] = {}
    if node is not None:
        line_map(node, (), lines)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            issues.append(
                ConfigIssue(source, nearest_line(loc, lines), field_name(loc), error["msg"])
            )
        raise ConfigError(issues) from None


def load_platform(path: str | Path) -> PlatformConfig:
    """Read and validate a platform file from disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        issue = ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([issue]) from None
    return parse_platform(text, str(path))
