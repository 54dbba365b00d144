"""Admission against token, request, concurrency and budget limits, and settling real usage.

A request is admitted on an estimate (prompt estimate x promptFactor + max_tokens) which is
reserved atomically in the store; when the response ends, whatever its fate, `settle` replaces
the estimate with the usage actually generated. So admitted estimates never exceed a limit, and
the counters converge to exact usage.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Callable, Mapping, Sequence

from tokenway.admission.limits.headers import rate_limit_headers
from tokenway.admission.limits.metrics import UsageMetrics
from tokenway.admission.limits.plan import Plan, plan_request, settle_deltas
from tokenway.admission.limits.rules import NANO, TeamLimits, price_nano
from tokenway.admission.limits.store import CounterOp, LimitStore, SlotOp, StoreUnavailable
from tokenway.admission.limits.usage import team_usage
from tokenway.auth.principal import ANONYMOUS
from tokenway.config.limits_store import LimitsStoreSettings
from tokenway.config.prices import Price
from tokenway.gateway.context import RequestContext, Usage
from tokenway.gateway.errors import GatewayError

log = logging.getLogger(__name__)

STORE_RETRY_S = 1.0


class Limiter:
    def __init__(
        self,
        teams: Mapping[str, TeamLimits],
        store: LimitStore,
        settings: LimitsStoreSettings,
        prices: Mapping[str, Price],
        metrics: UsageMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._teams = dict(teams)
        self._store = store
        self._settings = settings
        self._prices = dict(prices)
        self._metrics = metrics
        self._clock = clock
        self._store_down = False
        self._retry_at = float("-inf")
        # Concurrency slots are keyed by holder: unique across replicas and restarts.
        self._holder_prefix = secrets.token_hex(4)
        self._holder_seq = itertools.count()

    @property
    def store(self) -> LimitStore:
        return self._store

    async def reserve(self, ctx: RequestContext) -> LimitReservation:
        principal = ctx.principal or ANONYMOUS
        model = ctx.route.public_model if ctx.route is not None else ctx.model
        limits = self._teams.get(principal.team, TeamLimits(()))
        now = self._clock()
        plan = plan_request(
            limits.rules, principal, model, self.estimate(ctx), now, self._settings.key_prefix
        )
        holder = f"{ctx.request_id}:{self._holder_prefix}{next(self._holder_seq)}"
        reservation = LimitReservation(self, plan, principal.team, model, holder, limits.currency)
        if not plan.counters and not plan.slots:
            return reservation
        counters = [CounterOp(c.key, c.rule.limit, c.charge, c.expire_at) for c in plan.counters]
        lease = now + self._settings.lease
        slots = [SlotOp(s.key, s.rule.limit, lease) for s in plan.slots]
        if self._clock() < self._retry_at:
            return self._unavailable(reservation)
        try:
            verdict = await self._store.reserve(counters, slots, holder, now)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._unavailable(reservation)
        self._store_recovered()
        if not verdict.admitted:
            assert verdict.blocked is not None
            raise self._rejection(plan, verdict.values, verdict.blocked, now, principal.team, model)
        reservation.taken(rate_limit_headers(plan, verdict.values, now))
        return reservation

    def estimate(self, ctx: RequestContext) -> Usage:
        est = self._settings.estimate
        return Usage(
            prompt_tokens=math.ceil(ctx.prompt_tokens_estimate * est.prompt_factor),
            completion_tokens=ctx.max_tokens
            if ctx.max_tokens is not None
            else est.default_max_tokens,
        )

    async def usage(self, team: str, models: Sequence[str]) -> dict[str, object]:
        """Current usage against every limit of `team` (per-model counters for `models`,
        per-key counters for the team's configured keys), for the admin endpoint.
        Raises GatewayError 404 for a team that is not configured, 503 when the store is down."""
        limits = self._teams.get(team)
        if limits is None:
            raise GatewayError(404, f"no team {team!r} in the platform file", "unknown_team")
        try:
            return await team_usage(
                self._store, team, limits, models, self._clock(), self._settings.key_prefix
            )
        except StoreUnavailable as exc:
            self._store_failed(exc)
            raise GatewayError(
                503, "the limits store is unavailable", "limits_unavailable"
            ) from None

    async def close(self) -> None:
        await self._store.close()

    async def _settle(
        self, reservation: LimitReservation, usage: Usage | None, served: bool
    ) -> None:
        actual = usage or Usage()
        # Slots are freed by holder even when the reservation seemed to fail: a store that
        # timed out may still have taken them, and freeing a slot never taken changes nothing.
        # Settling is never skipped during the back-off: it runs after the answer, and a
        # skipped settle would hold the team's slots until their lease ends.
        slot_keys = [s.key for s in reservation.plan.slots]
        try:
            deltas = settle_deltas(
                reservation.plan, actual, reservation.model, reservation.reserved, served
            )
            price = self._prices.get(reservation.model)
            cost = price_nano(price, actual) / NANO if price is not None else 0.0
        except ArithmeticError:
            log.exception("limits: cannot price the usage of %s; slots freed", reservation.holder)
            deltas, cost = [], 0.0
        self._metrics.charged(
            reservation.team, reservation.model, actual, cost, reservation.currency
        )
        if not deltas and not slot_keys:
            return
        try:
            await self._store.settle(deltas, slot_keys, reservation.holder)
        except StoreUnavailable as exc:
            self._metrics.store_unavailable("settle", "usage-lost")
            self._store_failed(exc)
            return
        self._store_recovered()

    def _unavailable(self, reservation: LimitReservation) -> LimitReservation:
        if self._settings.on_unavailable == "fail-open":
            self._metrics.store_unavailable("reserve", "fail-open")
            return reservation
        self._metrics.store_unavailable("reserve", "fail-closed")
        self._metrics.rejected(reservation.team, reservation.model, "store_unavailable")
        raise GatewayError(
            503,
            "Rate limits cannot be checked right now; retry shortly.",
            "limits_unavailable",
            headers={"Retry-After": "1"},
        )

    def _store_failed(self, exc: StoreUnavailable) -> None:
        # Until the retry time, requests do not wait on a store that just failed (a blackholed
        # Redis would otherwise cost every request the full timeout).
        self._retry_at = self._clock() + STORE_RETRY_S
        if not self._store_down:
            self._store_down = True
            log.warning(
                "limits store unavailable (%s); applying %s", exc, self._settings.on_unavailable
            )

    def _store_recovered(self) -> None:
        if self._store_down:
            self._store_down = False
            log.warning("limits store available again")

    def _rejection(
        self, plan: Plan, values: Sequence[int], blocked: int, now: float, team: str, model: str
    ) -> GatewayError:
        if blocked < len(plan.counters):
            counter = plan.counters[blocked]
            rule, retry = counter.rule, max(1, math.ceil(counter.reset_at - now))
            if counter.charge > rule.limit:
                message = (
                    f"This request alone needs {counter.charge} against the limit {rule.describe}; "
                    "lower max_tokens or the prompt."
                )
            else:
                message = f"Rate limit reached for team {team!r}: {rule.describe}."
        else:
            rule, retry = plan.slots[blocked - len(plan.counters)].rule, 1
            message = f"Rate limit reached for team {team!r}: {rule.describe} requests."
        self._metrics.rejected(team, model, rule.kind)
        headers = rate_limit_headers(plan, values, now)
        headers["Retry-After"] = str(retry)
        return GatewayError(429, message, f"{rule.kind}_limit_exceeded", headers=headers)


class LimitReservation:
    """What one admitted request holds; settle exactly once (later calls do nothing)."""

    __slots__ = (
        "_headers",
        "_limiter",
        "_settled",
        "currency",
        "holder",
        "model",
        "plan",
        "reserved",
        "team",
    )

    def __init__(
        self, limiter: Limiter, plan: Plan, team: str, model: str, holder: str, currency: str
    ) -> None:
        self._limiter = limiter
        self.plan = plan
        self.team = team
        self.model = model
        self.holder = holder
        self.currency = currency
        self.reserved = False
        self._headers: dict[str, str] = {}
        self._settled = False

    def taken(self, headers: dict[str, str]) -> None:
        self.reserved = True
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    async def settle(self, usage: Usage | None) -> None:
        if self._settled:
            return
        self._settled = True
        await self._limiter._settle(self, usage, served=True)

    async def cancel(self) -> None:
        """The gateway refused the request after reserving (shed, queue full or timed out, no
        endpoint): everything is given back, its request count included."""
        if self._settled:
            return
        self._settled = True
        await self._limiter._settle(self, None, served=False)
