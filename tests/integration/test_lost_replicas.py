"""Issue 8's reproducers 8 and 9: a lost replica costs bounded waits and JSON errors only.

Each test kills a replica of the shared session app and waits for Serve to replace it before
it returns, so the tests after it find the app whole again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import ray
from ray import serve

from bench.local_server import wait_ready
from tests.conftest import TINY_ID
from tests.integration.conftest import API_KEY, APP_NAME

DECODER = "pioneer-test/llama-tiny-test"
REPLICA_WAIT_S = 5  # limits.replica_wait_s in configs/test.yaml


def kill_replicas(deployment: str) -> None:
    names = [
        (actor["name"], actor["namespace"])
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if f"#{deployment}#" in actor["name"]
    ]
    assert names, f"no {deployment} replica found"
    for name, namespace in names:
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)


def wait_until_serving(client: httpx.Client, body: dict, timeout_s: float = 180) -> None:
    """What a client does with a 503: come back after Retry-After, until it is served."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.post("/inference", json=body)
        if response.status_code == 200:
            return
        time.sleep(float(response.headers.get("Retry-After", 1)))
    raise AssertionError("the encoder did not come back")


def test_no_request_waits_forever_for_a_lost_encoder(
    client: httpx.Client, history_root: Path
) -> None:
    """Reproducer 9: with no live encoder replica, requests waited until one was back (22 s).
    Now: a 503 with Retry-After within the configured wait, recorded and billed as failed."""
    body = {"model_id": TINY_ID, "text": "Tim Cook works for Apple.", "schema": ["person"]}
    assert client.post("/inference", json=body).status_code == 200
    kill_replicas("EncoderDeployment")
    try:
        started = time.monotonic()
        response = client.post("/inference", json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert elapsed < REPLICA_WAIT_S + 5, elapsed
        assert int(response.headers["Retry-After"]) > 0
        assert "retry" in response.json()["detail"]
        inference_id = response.headers["X-Inference-Id"]
        record = client.get(f"/inferences/{inference_id}").json()
        assert record["status"] == "failed"
        assert record["error_type"] == "capacity_exhausted"
    finally:
        wait_until_serving(client, body)
    serve.get_deployment_handle("Recorder", APP_NAME).flush.remote().result()
    bills = duckdb.execute(
        "SELECT status FROM read_parquet(?) WHERE id = ?",
        [str(history_root / "billing" / "*" / "*.parquet"), inference_id],
    ).fetchall()
    assert bills == [("failed",)]


def test_requests_in_flight_on_a_lost_ingress_get_json_errors(server: str) -> None:
    """Reproducer 8: a killed ingress replica's in-flight requests got Ray's text/plain 500.
    Chat requests fill the decoder's slots and queue, so some are inside the ingress, not
    yet answered, when it dies; each must get a JSON error in its own format (or its 200)."""
    body = {
        "model": DECODER,
        "messages": [{"role": "user", "content": "Count to a hundred."}],
        "max_tokens": 450,  # seconds of work for 12 at once on 2 cores (context is 512)
        "temperature": 1.0,
    }
    headers = {"X-API-Key": API_KEY}

    def call(_: int) -> httpx.Response:
        return httpx.post(f"{server}/v1/chat/completions", json=body, headers=headers, timeout=90)

    with ThreadPoolExecutor(max_workers=12) as pool:
        pending = [pool.submit(call, i) for i in range(12)]
        time.sleep(0.5)  # all inside the ingress by now, none answered yet
        kill_replicas("Ingress")
        responses = [future.result() for future in pending]
    try:
        lost = [r for r in responses if r.status_code != 200]
        assert lost, "no request was in flight when the ingress died"
        for response in lost:
            assert response.headers["content-type"].startswith("application/json"), response.text
            error = response.json()["error"]  # the OpenAI shape of the route they came in by
            assert response.status_code == 503 and error["type"] == "server_error", error
            assert "Retry-After" in response.headers
        assert any("stopped before it answered" in r.json()["error"]["message"] for r in lost)
    finally:
        wait_ready(server, timeout_s=180)
