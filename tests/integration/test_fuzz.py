"""Seeded fuzzing of every inference and history route: no 500s, errors in their door's shape.

`bench/fuzz.py` builds the requests (type swaps, missing and unknown fields, huge integers,
NaN/1e999, deep nesting, long and over-window texts, invalid UTF-8, lone surrogates, wrong
content types, hostile ids and query filters); the same seed sends the same requests, so a
failure here reproduces with `python bench/fuzz.py --per-route 40 --seed 0`.
"""

from __future__ import annotations

import pytest

from bench.fuzz import FuzzReport, Problem, render, run_fuzz
from tests.integration.conftest import API_KEY

pytestmark = pytest.mark.integration

PER_ROUTE = 40  # 9 routes: 360 requests, about 10 s of fuzzing on 2 cores


@pytest.fixture(scope="module")
def report(server: str) -> FuzzReport:
    return run_fuzz(server, per_route=PER_ROUTE, seed=0, api_key=API_KEY)


def fail_on(found: list[Problem], report: FuzzReport) -> None:
    if found:  # the table and a few examples of each problem, not a list repr
        pytest.fail(render(FuzzReport(report.routes, found)), pytrace=False)


def test_every_route_was_fuzzed_and_answered_in_time(report: FuzzReport) -> None:
    assert all(stats.sent == PER_ROUTE for stats in report.routes.values())
    fail_on(report.slow, report)


def test_no_server_errors(report: FuzzReport) -> None:
    fail_on(report.server_errors, report)


def test_every_error_body_is_in_its_route_shape(report: FuzzReport) -> None:
    fail_on(report.bad_shapes, report)


def test_no_error_body_over_4_kib(report: FuzzReport) -> None:
    fail_on(report.oversized, report)
