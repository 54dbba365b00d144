"""SPIFFE identities: strict ID parsing, team patterns, and the forwarded client cert header."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tokenway.auth.canonical import PathGlobs
from tokenway.auth.principal import Principal

_ID = re.compile(r"^spiffe://([a-z0-9._-]+)((?:/[A-Za-z0-9._-]+)*)$")


def trust_domain(spiffe_id: str) -> str | None:
    """The trust domain of a well-formed SPIFFE ID, else None (ports, queries, dot segments,
    upper-case domains and empty segments are all malformed)."""
    match = _ID.match(spiffe_id)
    if match is None or any(seg in (".", "..") for seg in match.group(2).split("/")[1:]):
        return None
    return match.group(1)


class SpiffeTeams:
    """Maps a SPIFFE ID of an accepted trust domain to the first team whose pattern matches."""

    __slots__ = ("_teams", "trust_domains")

    def __init__(
        self, trust_domains: Sequence[str], teams: Sequence[tuple[str, PathGlobs]]
    ) -> None:
        self.trust_domains = frozenset(trust_domains)
        self._teams = tuple(teams)

    def principal(self, spiffe_id: str, method: str) -> Principal | str:
        """The principal, or the reason the ID is refused."""
        domain = trust_domain(spiffe_id)
        if domain is None:
            return "malformed SPIFFE ID"
        if domain not in self.trust_domains:
            return "SPIFFE ID from an untrusted trust domain"
        for team, globs in self._teams:
            if globs.match(spiffe_id):
                return Principal(
                    team=team,
                    user=spiffe_id,
                    method=method,
                    key_id=spiffe_id,
                    labels={"trust_domain": domain},
                )
        return "SPIFFE ID belongs to no team"


def xfcc_uris(header: str) -> list[str]:
    """URI values of the last element of an x-forwarded-client-cert header (the certificate the
    nearest proxy verified); commas and semicolons inside quoted values are not separators."""
    elements = _split(header, ",")
    if not elements:
        return []
    uris = []
    for pair in _split(elements[-1], ";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip().lower() == "uri":
            uris.append(value.strip().strip('"'))
    return uris


def _split(text: str, sep: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]
