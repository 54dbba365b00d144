"""Who is calling: the result of authentication, input to authorization and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `team` is what policies and limits key on."""

    team: str
    user: str | None = None
    method: str = "anonymous"
    """How the caller was identified: anonymous, api-key, jwt, spiffe."""
    key_id: str | None = None
    """A non-secret label of the credential (key label, JWT subject), safe to log."""
    labels: Mapping[str, str] = field(default_factory=dict)


ANONYMOUS = Principal(team="anonymous")
