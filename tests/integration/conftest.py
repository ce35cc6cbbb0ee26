"""One real Ray Serve app per test session, reached over real HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

API_KEY = "pio_sk_test_alpha"
OTHER_KEY = "pio_sk_test_beta"
APP_NAME = "pioneer-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def history_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history")


@pytest.fixture(scope="session")
def server(offline_models: None, history_root: Path) -> Iterator[str]:
    import ray
    from ray import serve

    from app.builder import build_app

    port = _free_port()
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_app(
            {"config": str(ROOT / "configs" / "test.yaml"), "storage_root": str(history_root)}
        ),
        name=APP_NAME,
        route_prefix="/",
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        pytest.fail("the test app did not become ready within 120 s")
    yield base_url
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def anonymous(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as http:
        yield http
