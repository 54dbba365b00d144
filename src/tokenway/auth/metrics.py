"""Prometheus series of authentication and authorization, on a registry the caller owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AuthenticationMetrics:
    __slots__ = ("_authenticated", "_failures")

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._authenticated = Counter(
            "tokenway_auth_authenticated",
            "Requests whose caller was identified, by method.",
            ["method"],
            registry=registry,
        )
        self._failures = Counter(
            "tokenway_auth_failures",
            "Requests refused with 401, by credential method and reason.",
            ["method", "reason"],
            registry=registry,
        )

    def authenticated(self, method: str) -> None:
        self._authenticated.labels(method).inc()

    def rejected(self, method: str, reason: str) -> None:
        self._failures.labels(method, reason).inc()


class AuthorizationMetrics:
    __slots__ = ("_decisions",)

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._decisions = Counter(
            "tokenway_authz_decisions",
            "Authorization decisions by team, decision and kind of reason.",
            ["team", "decision", "reason"],
            registry=registry,
        )

    def decided(self, team: str, allowed: bool, reason: str) -> None:
        self._decisions.labels(team, "allow" if allowed else "deny", reason).inc()
