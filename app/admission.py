"""The ingress side of rate limits and credit budgets: asks the Limiter deployment.

Concurrent requests' asks travel together in one Limiter call (app/grouping.py), so the
shared count costs one hop per group of requests, not per request. A Limiter that cannot be
reached lets requests through (logged): limits protect the service, and must not take it down.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from datetime import datetime
from typing import Any

from app.config import QuotasConfig
from app.grouping import Grouped
from app.protocol import ApiError, ApiException
from app.quotas import Admission

logger = logging.getLogger("ray.serve")
LIMITER_WAIT_S = 2.0
WARN_EVERY_S = 30.0


class Admissions:
    def __init__(self, limiter: Any, config: QuotasConfig) -> None:
        self._limiter = limiter
        self._rates = config.rate_limits
        self.budgets = bool(config.credit_budgets) or config.default_credit_budget is not None
        self._asks: Grouped[Admission, ApiError | None] = Grouped(self._send_asks)
        self._charges: Grouped[tuple[str, float, datetime], None] = Grouped(self._send_charges)
        self._pending: set[asyncio.Task] = set()
        self._warned_at = 0.0

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
        if admission is not None:
            await self._ask(admission)

    async def admit_spend(self, project_id: str | None) -> None:
        """Refuse (402/403) an inference for a project whose credit budget is spent."""
        if self.budgets and project_id is not None:
            await self._ask(Admission("inference", "team", project_id, (), project_id))

    async def _ask(self, admission: Admission) -> None:
        try:
            denied = await asyncio.wait_for(self._asks.submit(admission), LIMITER_WAIT_S)
        except Exception as exc:  # the Limiter is away: let it through, say so in the log
            now = time.monotonic()
            if now - self._warned_at > WARN_EVERY_S:
                self._warned_at = now
                logger.warning("limiter unreachable (%s): requests pass unlimited", exc)
            return
        if denied is not None:
            raise ApiException(denied)

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

    async def _send_asks(self, asks: list[Admission]) -> list[ApiError | None]:
        # Bounded here too, so a lost Limiter frees the group's slot for the next asks.
        return await asyncio.wait_for(self._limiter.admit_many.remote(asks), LIMITER_WAIT_S)

    async def _send_charges(self, charges: list[tuple[str, float, datetime]]) -> list[None]:
        return await self._limiter.charge_many.remote(charges)
