"""Start the real app on a private local Ray cluster (tests and benchmarks share this).

`serve run` would join whatever cluster `ray_current_cluster` names; this starts a fresh one
with its own free port, so a benchmark never lands on somebody else's server. Its Prometheus
metrics are on a free port Ray picks (`metrics_url()`), never `make serve`'s 8080.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "configs" / "test.yaml"
APP_NAME = "pioneer-test"
# Renders Ray's own proxy errors (a lost ingress replica, a proxy timeout) as JSON.
PROXY_CALLBACK = "app.proxy_errors:proxy_middlewares"
THROUGHPUT_ENV = "PIONEER_SERVE_THROUGHPUT_OPTIMIZED"  # "0" runs the cluster with Serve's defaults


# The offline models the test config serves (seconds to build; kept in models/ after).
TEST_MODELS = ("tiny-encoder", "tiny-job", "tiny-decoder", "tiny-decoder-lora")
TEST_MODELS += ("tiny-decoder-zero-lora", "minilm-embedding")
TEST_MODELS += ("tiny-agent",)  # trained at build time: ~1.5 min on 2 cores, once


def build_test_models(out: Path = ROOT / "models") -> None:
    from app.models.__main__ import main

    main(["build", "--out", str(out), "--only", *TEST_MODELS])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metrics_url() -> str:
    """Where the cluster this process started exports its metrics in Prometheus format: its
    node's metrics export port, which Ray picks free when none is given (README, "Metrics")."""
    import ray

    node = next(node for node in ray.nodes() if node["Alive"])
    return f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"


def cluster_runtime_env() -> dict:
    """The cluster's processes run as `make serve` runs them (Ray Serve's throughput setting);
    the driver keeps Serve's default handles, since that setting makes driver-side handles
    need a running event loop."""
    return {"env_vars": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": os.environ.get(THROUGHPUT_ENV, "1")}}


def wait_ready(base_url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url} did not become ready within {timeout_s:.0f} s")


@contextmanager
def local_cluster(port: int | None = None) -> Iterator[str]:
    """A new local Ray cluster with Serve's proxy on `port` (a free one by default), run as
    `make serve` runs it; yields the proxy's base URL, shuts both down after."""
    import ray
    from ray import serve

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", PROXY_CALLBACK)
    port = port or free_port()
    ray.init(
        address="local",
        include_dashboard=False,
        num_cpus=2,
        log_to_driver=False,
        runtime_env=cluster_runtime_env(),
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@contextmanager
def local_server(
    storage_root: Path, config: Path = TEST_CONFIG, port: int | None = None
) -> Iterator[str]:
    """The whole graph on a new local cluster; yields its base URL, shuts it down after."""
    from ray import serve

    from deployments.graph import build_app

    with local_cluster(port) as base_url:
        serve.run(
            build_app({"config": str(config), "storage_root": str(storage_root)}),
            name=APP_NAME,
            route_prefix="/",
        )
        wait_ready(base_url)
        yield base_url
