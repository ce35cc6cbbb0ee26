"""Rate-limit windows, credit budgets, and the error shapes errors.mdx gives them, per format.
The same paths run over real HTTP in tests/integration/test_limits.py."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.admission import Admissions
from app.api.auth import Principal
from app.api.errors import render
from app.config import CreditBudget, LimitsConfig, QuotasConfig, RateLimit
from app.handle_calls import assigned
from app.protocol import ApiError, ApiException
from app.quotas import Admission, CreditLedger, Quotas, SlidingWindows, spend_by_project

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def admission(*limits: tuple[int, float], project: str | None = None) -> Admission:
    return Admission(
        "inference",
        "team",
        "p",
        tuple(RateLimit(requests=n, window_s=w) for n, w in limits),
        project,
    )


def test_a_sliding_window_admits_exactly_n_and_says_when_there_is_room() -> None:
    windows = SlidingWindows()
    ask = admission((3, 10.0))
    assert [windows.admit(ask, t) for t in (0.0, 1.0, 2.0)] == [1, 1, 1]
    limit, wait = windows.admit(ask, 5.0)  # type: ignore[misc]
    assert limit.requests == 3 and wait == pytest.approx(5.0)  # the first leaves at 10
    assert windows.admit(ask, 10.0) == 1  # room again: 1.0 and 2.0 and 10.0
    assert isinstance(windows.admit(ask, 10.5), tuple)


def test_every_window_must_have_room_and_a_refusal_counts_in_none() -> None:
    windows = SlidingWindows()
    ask = admission((2, 1.0), (3, 100.0))
    assert windows.admit(ask, 0.0) == 1 and windows.admit(ask, 0.1) == 1
    assert isinstance(windows.admit(ask, 0.2), tuple)  # the short window is full
    assert windows.admit(ask, 1.5) == 1  # the long one holds 3 now
    limit, wait = windows.admit(ask, 2.0)  # type: ignore[misc]
    assert limit.window_s == 100.0 and wait == pytest.approx(98.0)
    windows.forget_idle(500.0)
    assert len(windows) == 0


def test_identities_and_groups_count_apart() -> None:
    windows = SlidingWindows()
    limits = (RateLimit(requests=1, window_s=60),)
    assert windows.admit(Admission("inference", "team", "a", limits), 0) == 1
    assert windows.admit(Admission("inference", "team", "b", limits), 0) == 1
    assert windows.admit(Admission("gliner2", "team", "a", limits), 0) == 1
    assert isinstance(windows.admit(Admission("inference", "team", "a", limits), 0), tuple)


def test_a_grant_is_what_every_window_has_room_for_and_counts_whole() -> None:
    windows = SlidingWindows()
    ask = admission((10, 60.0), (4, 1.0))
    assert windows.admit(replace(ask, count=8), 0.0) == 4  # the 1 s window holds 4
    assert isinstance(windows.admit(ask, 0.5), tuple)
    assert windows.admit(replace(ask, count=8), 1.0) == 4
    assert windows.admit(replace(ask, count=8), 2.0) == 2  # the minute holds 10
    assert isinstance(windows.admit(ask, 3.0), tuple)


def test_out_of_credits_then_the_ceiling() -> None:
    ledger = CreditLedger(
        {
            "free": CreditBudget(included_usd=1.0),
            "paid": CreditBudget(included_usd=1.0, overage_usd=0.5),
        },
        None,
    )
    ledger.seed({"free": 0.99, "paid": 1.2}, {"free": 0.99, "paid": 1.2}, NOW)
    assert ledger.check("free", NOW) is None and ledger.check("paid", NOW) is None
    assert ledger.check("unlisted", NOW) is None  # no default budget: unlimited
    ledger.charge("free", 0.02, NOW, NOW)
    ledger.charge("paid", 0.3, NOW, NOW)
    free, paid = ledger.check("free", NOW), ledger.check("paid", NOW)
    assert free is not None and (free.status, free.code) == (402, "out_of_credits")
    assert paid is not None and (paid.status, paid.code) == (403, "credit_ceiling_reached")
    next_month = datetime(2026, 12, 1, tzinfo=UTC)
    assert ledger.check("free", next_month) is None  # monthly budgets renew


def test_a_budget_that_never_renews_counts_all_time_and_old_bills_stay_in_their_month() -> None:
    ledger = CreditLedger({}, CreditBudget(included_usd=1.0, renews="never"))
    ledger.seed({"p": 0.9}, {}, NOW)
    ledger.charge("p", 0.2, datetime(2026, 10, 31, tzinfo=UTC), NOW)  # last month's bill
    assert ledger.spent("p", CreditBudget(included_usd=1.0), NOW) == 0.0  # not this month
    denied = ledger.check("p", NOW)
    assert denied is not None and denied.status == 402


def test_a_spent_budget_is_told_before_a_rate_limit() -> None:
    quotas = Quotas(QuotasConfig(credit_budgets={"p": CreditBudget(included_usd=0.0)}))
    denied = quotas.admit(admission((1, 60.0), project="p"), 0.0, NOW)
    assert denied is not None and denied.status == 402


def test_usage_rows_sum_per_project() -> None:
    rows = [
        {"project_id": "a", "cost_usd": 0.5},
        {"project_id": "a", "cost_usd": 0.25},
        {"project_id": None, "cost_usd": 9.0},
        {"project_id": "b", "cost_usd": None},
    ]
    assert spend_by_project(rows) == {"a": 0.75, "b": 0.0}


RATE = ApiError(429, "inference_rate_limit", "Rate limit exceeded", retry_after_s=3, scope="team")
BROKE = ApiError(402, "out_of_credits", "Add credits.", resolution_url="https://x/credits")


def test_429_in_each_format() -> None:
    native = render(RATE, "native")
    assert native.status_code == 429
    assert native.headers["Retry-After"] == "3"
    assert native.headers["X-RateLimit-Scope"] == "team"
    assert native.headers["X-RateLimit-Code"] == "inference_rate_limit"
    assert (
        native.body
        == b'{"detail":"Rate limit exceeded","code":"inference_rate_limit","scope":"team"}'
    )
    openai = render(RATE, "openai")
    assert b'"code":"rate_limit_exceeded"' in openai.body and openai.status_code == 429
    anthropic = render(RATE, "anthropic")
    assert b'"type":"rate_limit_error"' in anthropic.body
    assert anthropic.headers["Retry-After"] == "3"


def test_billing_denials_and_unhandled_errors_in_pioneers_shapes() -> None:
    native = render(BROKE, "native")
    assert native.status_code == 402
    assert (
        native.body
        == b'{"code":"out_of_credits","message":"Add credits.","resolution_url":"https://x/credits"}'
    )
    assert b'"type":"insufficient_quota"' in render(BROKE, "openai").body
    assert b'"type":"billing_error"' in render(BROKE, "anthropic").body
    internal = render(ApiError.internal("boom"), "native")
    assert internal.status_code == 500
    assert internal.body == b'{"error":"Internal server error","message":"boom"}'


class NeverAssigned:
    """A call no replica takes: its deployment has none up."""

    async def _fetch_future_result_async(self) -> None:
        await asyncio.sleep(3600)

    def cancel(self) -> None:
        pass


@pytest.mark.parametrize("warming,status", [(True, 425), (False, 503)])
def test_a_deployment_still_starting_is_425_a_lost_one_503(warming: bool, status: int) -> None:
    async def is_warming(what: str) -> bool:
        return warming

    limits = LimitsConfig(replica_wait_s=0.05, retry_after_s=7)
    with pytest.raises(ApiException) as caught:
        asyncio.run(assigned(NeverAssigned(), "encoder deployment", limits, is_warming))
    assert caught.value.error.status == status
    assert caught.value.error.retry_after_s == 7


class FakeLimiter:
    """The Limiter's admit_many over a real SlidingWindows, as a handle offers it."""

    def __init__(self) -> None:
        self.quotas = Quotas(QuotasConfig())
        self.calls: list[list[Admission]] = []
        self.admit_many = self

    def remote(self, asks: list[Admission]) -> Any:
        self.calls.append(asks)

        async def answer() -> list[int | ApiError]:
            return [self.quotas.admit(ask, time.monotonic(), NOW) for ask in asks]

        return answer()


def principal(**limits: list[RateLimit]) -> Principal:
    return Principal(project_id="p", key_id="k", rate_limits=limits)


def test_a_busy_key_spends_grants_locally_and_never_passes_its_limit() -> None:
    limiter = FakeLimiter()
    admissions = Admissions(limiter, QuotasConfig())
    busy = principal(inference=[RateLimit(requests=6400, window_s=60)])

    async def run() -> None:
        for _ in range(300):
            await admissions.admit_rate(busy, "inference")

    asyncio.run(run())
    assert len(limiter.calls) < 30  # grants grow with the rate: far fewer hops than requests
    assert max(ask.count for call in limiter.calls for ask in call) <= 6400 // 64


def test_small_limits_are_asked_one_request_at_a_time_and_refusals_answered_here() -> None:
    limiter = FakeLimiter()
    admissions = Admissions(limiter, QuotasConfig())
    small = principal(gliner2=[RateLimit(requests=3, window_s=30)])

    async def run() -> list[int]:
        statuses = []
        for _ in range(6):
            try:
                await admissions.admit_rate(small, "gliner2")
                statuses.append(200)
            except ApiException as exc:
                statuses.append(exc.error.status)
                assert 1 <= (exc.error.retry_after_s or 0) <= 30
        return statuses

    assert asyncio.run(run()) == [200, 200, 200, 429, 429, 429]
    assert [ask.count for call in limiter.calls for ask in call] == [1, 1, 1, 1]  # then local
