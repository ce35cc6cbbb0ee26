"""Request-rate limits and credit budgets, as plain logic (no Ray, no I/O).

The Limiter deployment (deployments/limiter.py) holds one `Quotas` for the whole server, so
every ingress replica draws on the same counts; `app/admission.py` is the ingress side.
Rate limits are sliding windows (exactly N requests in any window_s), per endpoint group and
scope (rate-limits.mdx). Credit budgets compare a project's spend, priced from its billing
events, with its allowance: 402 `out_of_credits`, or 403 `credit_ceiling_reached` once the
overage allowed past it is spent too (errors.mdx).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.config import CreditBudget, QuotasConfig, RateLimit
from app.protocol import ApiError, quoted

GROUP_NAMES = {
    "inference": "POST /inference",
    "compatible": "the OpenAI/Anthropic-compatible endpoints",
    "gliner2": "POST /gliner-2",
    "other": "this endpoint group",
}


@dataclass(frozen=True)
class Admission:
    """One request asking to run: which counts it draws on."""

    group: str  # inference | compatible | gliner2 | other
    scope: str  # team | key | ip: what `identity` is
    identity: str
    limits: tuple[RateLimit, ...]
    project_id: str | None = None  # whose credits it spends; None: no credit check
    count: int = 1  # requests asked for at once: an ingress's grant (app/admission.py)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class SlidingWindows:
    """Request times per (group, scope, identity, window): a request is admitted when every
    window it falls under holds fewer than its limit; an admitted request counts in all."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str, float], deque[float]] = {}

    def admit(self, admission: Admission, now: float) -> int | tuple[RateLimit, float]:
        """How many of the `count` asked are granted (at least 1, as many as every window
        has room for), counted now; or, with no room, the limit hit and the seconds until
        it has some."""
        windows = []
        granted = admission.count
        for limit in admission.limits:
            key = (admission.group, admission.scope, admission.identity, limit.window_s)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - limit.window_s:
                hits.popleft()
            if len(hits) >= limit.requests:
                return limit, hits[len(hits) - limit.requests] + limit.window_s - now
            granted = min(granted, limit.requests - len(hits))
            windows.append(hits)
        for hits in windows:
            hits.extend([now] * granted)
        return granted

    def forget_idle(self, now: float) -> None:
        """Drop the windows with no request left in them (identities are unbounded)."""
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - k[3]]:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)


class CreditLedger:
    """Spend per project this month and in all, priced from billing events."""

    def __init__(self, budgets: dict[str, CreditBudget], default: CreditBudget | None) -> None:
        self._budgets = budgets
        self._default = default
        self._month: datetime | None = None
        self._this_month: dict[str, float] = {}
        self._all_time: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._budgets) or self._default is not None

    def budget(self, project_id: str) -> CreditBudget | None:
        return self._budgets.get(project_id, self._default)

    def seed(self, all_time: dict[str, float], this_month: dict[str, float], now: datetime) -> None:
        """Spend already billed (the billing dataset), added to what was charged since."""
        self._roll(now)
        for project, cost in all_time.items():
            self._all_time[project] = self._all_time.get(project, 0.0) + cost
        for project, cost in this_month.items():
            self._this_month[project] = self._this_month.get(project, 0.0) + cost

    def charge(self, project_id: str, cost_usd: float, created_at: datetime, now: datetime) -> None:
        self._roll(now)
        self._all_time[project_id] = self._all_time.get(project_id, 0.0) + cost_usd
        if month_start(created_at) == self._month:  # a bill from last month counts there only
            self._this_month[project_id] = self._this_month.get(project_id, 0.0) + cost_usd

    def spent(self, project_id: str, budget: CreditBudget, now: datetime) -> float:
        self._roll(now)
        spend = self._this_month if budget.renews == "monthly" else self._all_time
        return spend.get(project_id, 0.0)

    def check(self, project_id: str, now: datetime) -> ApiError | None:
        budget = self.budget(project_id)
        if budget is None:
            return None
        spent = self.spent(project_id, budget, now)
        if budget.overage_usd > 0 and spent >= budget.included_usd + budget.overage_usd:
            return ApiError(
                403,
                "credit_ceiling_reached",
                f"Project {quoted(project_id)} has reached its maximum overage spend "
                f"(${budget.included_usd + budget.overage_usd:g} this period). Raise the ceiling "
                "to continue.",
                resolution_url=budget.resolution_url,
            )
        if budget.overage_usd == 0 and spent >= budget.included_usd:
            return ApiError(
                402,
                "out_of_credits",
                f"Project {quoted(project_id)} has used its included credits "
                f"(${budget.included_usd:g}). Add credits or enable auto top-up.",
                resolution_url=budget.resolution_url,
            )
        return None

    def _roll(self, now: datetime) -> None:
        month = month_start(now)
        if self._month is not None and month != self._month:
            self._this_month.clear()
        self._month = month


class Quotas:
    """Both checks, in the order a client needs them: a rate limit passes with time, a
    spent budget does not, so a request over both is told about the budget."""

    def __init__(self, config: QuotasConfig) -> None:
        self.windows = SlidingWindows()
        self.credits = CreditLedger(config.credit_budgets, config.default_credit_budget)

    def admit(self, admission: Admission, now: float, today: datetime) -> int | ApiError:
        """Requests granted (>= 1), or the error to answer."""
        if admission.project_id is not None and self.credits.enabled:
            denied = self.credits.check(admission.project_id, today)
            if denied is not None:
                return denied
        hit = self.windows.admit(admission, now)
        if isinstance(hit, int):
            return hit
        limit, wait_s = hit
        retry_after = max(1, math.ceil(wait_s))
        return ApiError(
            429,
            f"{admission.group}_rate_limit",
            f"Rate limit exceeded: {limit.requests} requests per {limit.window_s:g} s on "
            f"{GROUP_NAMES[admission.group]} per {admission.scope}; retry in {retry_after} s.",
            retry_after_s=retry_after,
            scope=admission.scope,
        )


def spend_by_project(usage_rows: list[dict[str, Any]]) -> dict[str, float]:
    """The history store's usage rows (per project and model) summed per project."""
    spend: dict[str, float] = {}
    for row in usage_rows:
        project = row.get("project_id")
        if project is not None:
            spend[project] = spend.get(project, 0.0) + float(row.get("cost_usd") or 0.0)
    return spend
