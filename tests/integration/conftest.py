"""One real Ray Serve app per test session, reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from bench.local_server import APP_NAME as APP_NAME  # re-exported for the tests
from bench.local_server import local_server

API_KEY = "pio_sk_test_alpha"
OTHER_KEY = "pio_sk_test_beta"


@pytest.fixture(scope="session")
def history_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history")


@pytest.fixture(scope="session")
def server(offline_models: None, history_root: Path) -> Iterator[str]:
    try:
        with local_server(history_root) as base_url:
            yield base_url
    except TimeoutError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def anonymous(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def sdk(server: str) -> openai.OpenAI:
    """The official OpenAI SDK, pointed at the server as a user would."""
    return openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture(scope="session")
def claude(server: str) -> anthropic.Anthropic:
    """The official Anthropic SDK, pointed at the server as a user would."""
    return anthropic.Anthropic(base_url=server, api_key=API_KEY, max_retries=0)
