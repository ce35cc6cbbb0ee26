"""Limiter deployment: one replica where every ingress replica's requests are counted.

Holds the sliding windows of the rate limits and each project's spend (app/quotas.py). Spend
starts from the billing dataset (through the Recorder, so it includes bills not yet flushed)
for bills created before this replica started, and grows with the bills each ingress reports
as they become durable, counted from then on: so no bill is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from app.config import QuotasConfig
from app.protocol import ApiError
from app.quotas import Admission, Quotas, month_start, spend_by_project

logger = logging.getLogger("ray.serve")
SEED_TIMEOUT_S = 30.0
SEED_RETRY_S = 5.0
FORGET_EVERY_S = 60.0


class Limiter:
    def __init__(self, config: QuotasConfig, recorder: Any = None) -> None:
        self._quotas = Quotas(config)
        self._recorder = recorder
        self._forgot_at = time.monotonic()
        self._started = datetime.now(UTC)
        self._seeding: asyncio.Task | None = None
        if self._quotas.credits.enabled and recorder is not None:
            self._seeding = asyncio.get_running_loop().create_task(self._seed())

    async def _seed(self) -> None:
        """Spend billed before this replica started: all time, and this month."""
        until = self._started
        while True:
            try:
                all_time, this_month = await asyncio.wait_for(
                    asyncio.gather(
                        self._recorder.usage.remote(None, None, until),
                        self._recorder.usage.remote(None, month_start(until), until),
                    ),
                    SEED_TIMEOUT_S,
                )
            except Exception as exc:  # the Recorder is starting or lost: budgets wait for it
                logger.warning("limiter: billing history not readable yet (%s); retrying", exc)
                await asyncio.sleep(SEED_RETRY_S)
                continue
            self._quotas.credits.seed(
                spend_by_project(all_time), spend_by_project(this_month), until
            )
            logger.info("limiter: spend seeded for %d projects", len(all_time))
            return

    async def admit_many(self, admissions: list[Admission]) -> list[int | ApiError]:
        """The ingresses' grouped asks, in order: requests granted, or the error to answer."""
        if self._seeding is not None and not self._seeding.done():
            # Budgets need the billed spend first; rate limits alone never wait for it.
            if any(a.project_id is not None for a in admissions):
                await asyncio.shield(self._seeding)
        now, today = time.monotonic(), datetime.now(UTC)
        if now - self._forgot_at > FORGET_EVERY_S:
            self._forgot_at = now
            self._quotas.windows.forget_idle(now)
        return [self._quotas.admit(admission, now, today) for admission in admissions]

    async def charge_many(self, charges: list[tuple[str, float, datetime]]) -> list[None]:
        """(project, cost in USD, the bill's created_at) of bills now durable."""
        now = datetime.now(UTC)
        for project_id, cost_usd, created_at in charges:
            if created_at >= self._started:  # older ones are in the seed
                self._quotas.credits.charge(project_id, cost_usd, created_at, now)
        return [None] * len(charges)
