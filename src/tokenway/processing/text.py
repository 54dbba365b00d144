"""The texts of a request body (message contents, prompts, inputs) and copy-on-write edits."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class TextSlot:
    """One string of the body that carries prompt text, and where it lives."""

    path: Path
    role: str | None
    text: str


def _content_slots(base: Path, role: str, content: Any) -> list[TextSlot]:
    if isinstance(content, str):
        return [TextSlot((*base, "content"), role, content)]
    slots = []
    if isinstance(content, list):
        for index, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                slots.append(TextSlot((*base, "content", index, "text"), role, part["text"]))
    return slots


def text_slots(body: Mapping[str, Any], roles: Collection[str]) -> list[TextSlot]:
    """Prompt strings of a chat (messages of `roles`), completion or embedding body."""
    slots: list[TextSlot] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") in roles:
                slots.extend(
                    _content_slots(("messages", index), message["role"], message.get("content"))
                )
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            slots.append(TextSlot((key,), None, value))
        elif isinstance(value, list):
            slots.extend(
                TextSlot((key, i), None, v) for i, v in enumerate(value) if isinstance(v, str)
            )
    return slots


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message, or the completion prompt."""
    slots = text_slots(body, ("user",))
    if not slots:
        return ""
    last = slots[-1].path[:2] if slots[-1].role else slots[-1].path[:1]
    return "\n".join(s.text for s in slots if s.path[: len(last)] == last)


def replace_texts(body: Mapping[str, Any], changes: Mapping[Path, str]) -> dict[str, Any]:
    """A copy of body with the strings at `changes` replaced; untouched parts are shared."""
    new = dict(body)
    copied: set[Path] = set()
    for path, text in changes.items():
        node: Any = new
        for depth, key in enumerate(path[:-1]):
            child = node[key]
            prefix = path[: depth + 1]
            if prefix not in copied:
                child = list(child) if isinstance(child, list) else dict(child)
                node[key] = child
                copied.add(prefix)
            node = child
        node[path[-1]] = text
    return new


def fold(text: str) -> str:
    """Compatibility-normalised, case-folded text without invisible format characters.

    Obfuscations such as full-width letters or zero-width spaces inside words fold away.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isascii():
        return folded
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
