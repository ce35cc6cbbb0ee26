"""Shared test settings: paths to the offline models the suite runs on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
TINY_DIR = MODELS / "gliner2-tiny-test"
TINY_JOB_DIR = MODELS / "jobs" / "job_tiny_ner01"
TINY_ID = "pioneer-test/gliner2-tiny-test"
TINY_JOB_ID = "job_tiny_ner01"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def offline_models() -> None:
    """Build the tiny models if `make models` has not (the build is idempotent, ~3 s)."""
    from bench.local_server import build_test_models

    build_test_models(MODELS)


REPORT_LINES = pytest.StashKey[list[str]]()


def report_line(config: pytest.Config, line: str) -> None:
    """Keep a line for the run's summary (figures a reader of `make test` should see)."""
    config.stash.setdefault(REPORT_LINES, []).append(line)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    lines = config.stash.get(REPORT_LINES, [])
    if lines:
        terminalreporter.section("reported figures")
        for line in lines:
            terminalreporter.write_line(line)
