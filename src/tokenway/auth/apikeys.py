"""API keys: generated once, stored and compared only as SHA-256 hex digests."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from tokenway.auth.principal import Principal

KEY_PREFIX = "tw-"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyEntry:
    team: str
    label: str
    sha256: str


class ApiKeyIndex:
    """Finds the team of a presented key by its digest; the key itself is never kept."""

    __slots__ = ("_by_hash",)

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._by_hash = {e.sha256: e for e in entries}

    def __len__(self) -> int:
        return len(self._by_hash)

    def principal(self, key: str) -> Principal | None:
        entry = self._by_hash.get(hash_key(key))
        if entry is None:
            return None
        return Principal(
            team=entry.team,
            method="api-key",
            key_id=entry.label or entry.sha256[:12],
        )
