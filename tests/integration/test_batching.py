"""Concurrent requests share engine calls: the encoder replica's batch sizes show it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from ray import serve

from tests.conftest import TINY_ID
from tests.integration.conftest import API_KEY, APP_NAME


def encoder_stats() -> dict:
    return serve.get_deployment_handle("EncoderDeployment", APP_NAME).stats.remote().result()


def test_twenty_concurrent_requests_are_batched(server: str) -> None:
    before = encoder_stats()["batches"]
    texts = [f"Person number {i} works for Apple in Paris." for i in range(20)]

    def post(text: str) -> dict:
        with httpx.Client(base_url=server, headers={"X-API-Key": API_KEY}, timeout=60) as http:
            response = http.post(
                "/inference",
                json={"model_id": TINY_ID, "text": text, "schema": ["person"], "threshold": 0.3},
            )
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(post, texts))

    assert len({r["inference_id"] for r in results}) == 20
    stats = encoder_stats()
    new_batches = stats["batch_texts"][before:]
    print(f"engine calls for 20 concurrent requests, texts per call: {new_batches}")
    assert sum(new_batches) == 20, new_batches
    assert max(new_batches) > 1, f"no batching observed: {new_batches}"
    assert len(new_batches) < 20


def test_a_list_larger_than_the_batch_limit_still_runs(client: httpx.Client) -> None:
    """max_batch_size is 32 in the test config; 40 texts run as one engine call of their own."""
    texts = [f"Text {i} mentions Google." for i in range(40)]
    response = client.post(
        "/inference", json={"model_id": TINY_ID, "text": texts, "schema": ["organization"]}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["result"]) == 40
    assert 40 in encoder_stats()["batch_texts"]
