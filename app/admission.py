"""The ingress side of rate limits and credit budgets: asks the Limiter deployment.

A request-rate ask is a grant: an ingress replica asks for as many requests as it served for
that key in the last GRANT_S (at least 1, at most 1/GRANT_SHARE of the smallest limit), the
Limiter counts them at once, and the replica spends them locally until they run out or
GRANT_S passes. So a busy key costs one hop per grant instead of one per request, the count
stays in one place (a limit is never exceeded: an unspent grant still counts, for at most
1/GRANT_SHARE of a limit per replica), and small limits are asked one request at a time,
exactly. Concurrent asks travel together in one Limiter call (app/grouping.py). A Limiter
that cannot be reached lets requests through (logged): limits protect the service, and must
not take it down.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app import metrics
from app.config import QuotasConfig
from app.grouping import Grouped
from app.protocol import ApiError, ApiException
from app.quotas import Admission

logger = logging.getLogger("ray.serve")
LIMITER_WAIT_S = 2.0
WARN_EVERY_S = 30.0
UNREACHABLE_S = 5.0
GRANT_S = 0.5  # how long a grant may be spent locally
GRANT_SHARE = 64  # a grant is at most this share of the smallest limit
MAX_GRANTS = 10_000  # keys are client input: the table is bounded


@dataclass
class _Grant:
    """One key's requests granted to this replica, and its recent rate (to size the next)."""

    left: int = 0
    expires: float = 0.0
    used: int = 0  # taken since `since`
    since: float = 0.0
    renewing: asyncio.Future[None] | None = None
    refused: ApiError | None = None  # a 429, answered here while its window cannot have room
    room_by: float = 0.0  # when it has room at the latest (now + Retry-After)

    def size(self, limits: tuple[Any, ...], now: float) -> int:
        rate = self.used / max(now - self.since, 1e-3)
        cap = min(limit.requests for limit in limits) // GRANT_SHARE
        return max(1, min(cap, math.ceil(rate * GRANT_S)))


class Admissions:
    def __init__(self, limiter: Any, config: QuotasConfig) -> None:
        self._limiter = limiter
        self._rates = config.rate_limits
        self.budgets = bool(config.credit_budgets) or config.default_credit_budget is not None
        self._asks: Grouped[Admission, int | ApiError] = Grouped(self._send_asks)
        self._grants: dict[tuple[str, str, str], _Grant] = {}
        self._charges: Grouped[tuple[str, float, datetime], None] = Grouped(self._send_charges)
        self._pending: set[asyncio.Task] = set()
        self._warned_at = 0.0
        self._unreachable_until = 0.0

    def rate_admission(self, principal: Any, group: str) -> Admission | None:
        """Which counts a request from `principal` to `group` draws on (rate-limits.mdx:
        per team, else key, else client IP; `other` per client IP); None: unlimited."""
        if not self._rates.enabled:
            return None
        own = principal.rate_limits.get(group)
        limits = tuple(own if own is not None else getattr(self._rates, group))
        if not limits:
            return None
        if group == "other":
            scope, identity = "ip", principal.client_ip or "unknown"
        elif own is not None:
            scope, identity = "key", principal.key_id
        elif principal.project_id is not None:
            scope, identity = "team", principal.project_id
        elif principal.key_id is not None:
            scope, identity = "key", principal.key_id
        else:
            scope, identity = "ip", principal.client_ip or "unknown"
        return Admission(group, scope, identity, limits)

    async def admit_rate(self, principal: Any, group: str) -> None:
        admission = self.rate_admission(principal, group)
        if admission is None:
            return
        key = (admission.group, admission.scope, admission.identity)
        grant = self._grants.get(key)
        if grant is None:
            if len(self._grants) >= MAX_GRANTS:
                self._forget_spent()
            grant = self._grants[key] = _Grant()
        while True:
            now = time.monotonic()
            if grant.refused is not None and now < grant.room_by - 1:
                # Retry-After is the exact wait rounded up: no room before room_by - 1 s.
                wait = max(1, math.ceil(grant.room_by - now))
                metrics.rate_limit_rejected(group, admission.scope, grant.refused.code)
                raise ApiException(replace(grant.refused, retry_after_s=wait))
            if grant.left > 0 and grant.expires > now:
                grant.left -= 1
                grant.used += 1
                return
            if grant.renewing is None:
                break
            await asyncio.shield(grant.renewing)  # another request is asking: then look again
        renewed = grant.renewing = asyncio.get_running_loop().create_future()
        try:
            want = grant.size(admission.limits, now)
            try:
                granted = await self._ask(replace(admission, count=want))
            except ApiException as exc:
                grant.refused, grant.room_by = exc.error, now + (exc.error.retry_after_s or 1)
                metrics.rate_limit_rejected(group, admission.scope, exc.error.code)
                raise
            # This request takes one; the rest are spent here until GRANT_S has passed.
            grant.left, grant.expires = (granted or 1) - 1, now + GRANT_S
            grant.used, grant.since = 1, now
        finally:
            grant.renewing = None
            renewed.set_result(None)

    def _forget_spent(self) -> None:
        now = time.monotonic()
        for key in [k for k, g in self._grants.items() if g.expires < now and not g.renewing]:
            del self._grants[key]

    async def admit_spend(self, project_id: str | None) -> None:
        """Refuse (402/403) an inference for a project whose credit budget is spent."""
        if self.budgets and project_id is not None:
            try:
                await self._ask(Admission("inference", "team", project_id, (), project_id))
            except ApiException as exc:
                metrics.credit_rejected(exc.error.code)
                raise

    async def _ask(self, admission: Admission) -> int | None:
        """Requests granted; None when the Limiter could not be asked (then: unlimited, and
        for UNREACHABLE_S nobody waits on it again)."""
        if time.monotonic() < self._unreachable_until:
            return None
        try:
            answer = await asyncio.wait_for(self._asks.submit(admission), LIMITER_WAIT_S)
        except Exception as exc:  # the Limiter is away: let it through, say so in the log
            now = time.monotonic()
            self._unreachable_until = now + UNREACHABLE_S
            if now - self._warned_at > WARN_EVERY_S:
                self._warned_at = now
                logger.warning("limiter unreachable (%s): requests pass unlimited", exc)
            return None
        if isinstance(answer, ApiError):
            raise ApiException(answer)
        return answer

    def charged(self, bill: dict[str, Any]) -> None:
        """A durable bill's cost, sent on in the background: spend counts toward budgets."""
        if not self.budgets or bill.get("project_id") is None or not bill.get("cost_usd"):
            return
        charge = (bill["project_id"], float(bill["cost_usd"]), bill["created_at"])
        # A fresh context: the request that paid may be cancelled; its charge must still go.
        task = asyncio.get_running_loop().create_task(
            self._charge(charge), context=contextvars.Context()
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _charge(self, charge: tuple[str, float, datetime]) -> None:
        try:
            await self._charges.submit(charge)
        except Exception as exc:
            logger.warning(
                "limiter did not take a charge (%s): its spend lags until it restarts", exc
            )

    async def _send_asks(self, asks: list[Admission]) -> list[int | ApiError]:
        # Bounded here too, so a lost Limiter frees the group's slot for the next asks.
        return await asyncio.wait_for(self._limiter.admit_many.remote(asks), LIMITER_WAIT_S)

    async def _send_charges(self, charges: list[tuple[str, float, datetime]]) -> list[None]:
        return await self._limiter.charge_many.remote(charges)
