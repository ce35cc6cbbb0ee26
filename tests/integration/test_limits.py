"""Rate limits and credit budgets (rate-limits.mdx, errors.mdx), over real HTTP.

Small limits come from configs/test_keys.yaml (`pio_sk_test_limited`: 3 requests per 4 s per
endpoint group, its own count) and budgets from configs/test.yaml; the session server runs two
ingress replicas, which must share one count.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from gliner2 import GLiNER2API
from ray import serve

from tests.conftest import TINY_ID
from tests.integration.conftest import APP_NAME

LIMITED = "pio_sk_test_limited"
WINDOW_S = 4
TEXT = "Tim Cook is the CEO of Apple."
NATIVE = {"model_id": TINY_ID, "text": TEXT, "schema": ["person"]}
CHAT = {
    "model": TINY_ID,
    "messages": [{"role": "user", "content": TEXT}],
    "schema": {"entities": ["person"]},
}
MESSAGES = {**CHAT, "max_tokens": 16}
GLINER2 = {"task": "extract_entities", "text": TEXT, "schema": ["person"]}


def post(server: str, path: str, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server}{path}", json=body, headers={"X-API-Key": key, **headers}, timeout=60
    )


def fresh_window() -> None:
    time.sleep(WINDOW_S + 0.5)


def spend(server: str, path: str, body: dict[str, Any], count: int) -> None:
    for _ in range(count):
        assert post(server, path, body, LIMITED).status_code == 200


def assert_limited(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_S
    assert response.headers["X-RateLimit-Scope"] == "key"
    assert response.headers["X-RateLimit-Code"] == code


def test_native_429_body_headers_and_retry_after(server: str) -> None:
    fresh_window()
    spend(server, "/inference", NATIVE, 3)
    response = post(server, "/inference", NATIVE, LIMITED)
    assert_limited(response, "inference_rate_limit")
    body = response.json()
    assert body["code"] == "inference_rate_limit" and body["scope"] == "key"
    assert "Rate limit exceeded" in body["detail"]
    # Another group keeps its own count, and another key is not limited at all.
    assert post(server, "/gliner-2", GLINER2, LIMITED).status_code == 200
    assert post(server, "/inference", NATIVE, "pio_sk_test_alpha").status_code == 200
    time.sleep(int(response.headers["Retry-After"]))
    assert post(server, "/inference", NATIVE, LIMITED).status_code == 200


def test_openai_and_anthropic_shapes(server: str) -> None:
    fresh_window()
    spend(server, "/v1/chat/completions", CHAT, 3)
    openai = post(server, "/v1/chat/completions", CHAT, LIMITED)
    assert_limited(openai, "compatible_rate_limit")
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    # /v1/messages is in the same group (rate-limits.mdx), so the same count.
    anthropic = post(
        server, "/v1/messages", MESSAGES, LIMITED, **{"anthropic-version": "2023-06-01"}
    )
    assert_limited(anthropic, "compatible_rate_limit")
    assert anthropic.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": anthropic.json()["error"]["message"]},
    }


def test_two_ingress_replicas_share_one_count(server: str) -> None:
    replicas = serve.status().applications[APP_NAME].deployments["Ingress"].replica_states
    assert replicas.get("RUNNING") == 2, replicas
    fresh_window()
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(
            pool.map(lambda _: post(server, "/gliner-2", GLINER2, LIMITED).status_code, range(12))
        )
    assert sorted(statuses) == [200] * 3 + [429] * 9, statuses


def test_the_gliner2_client_retries_through_a_429(server: str) -> None:
    fresh_window()
    spend(server, "/gliner-2", GLINER2, 3)
    assert post(server, "/gliner-2", GLINER2, LIMITED).status_code == 429
    with GLiNER2API(api_key=LIMITED, api_base_url=server, max_retries=3) as api:
        started = time.monotonic()
        result = api.extract_entities(TEXT, ["person"])
    assert "entities" in result
    assert time.monotonic() - started >= 0.5  # it waited as Retry-After said


def _until_denied(server: str, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """Spend a tiny budget: the first inference passes, and once its bill has reached the
    Limiter (just after it is durable) the next is refused."""
    for _ in range(20):
        response = post(server, path, body, key)
        if response.status_code != 200:
            return response
        time.sleep(0.2)
    raise AssertionError("the budget was never spent")


def test_out_of_credits_is_402_with_pioneers_body(server: str) -> None:
    response = _until_denied(server, "pio_sk_test_broke", "/inference", NATIVE)
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["code"] == "out_of_credits" and body["resolution_url"].startswith("https://")
    assert set(body) == {"code", "message", "resolution_url"}
    openai = post(server, "/v1/chat/completions", CHAT, "pio_sk_test_broke")
    assert openai.status_code == 402
    assert openai.json()["error"]["code"] == "out_of_credits"
    # Billing denials are not rate limits: no Retry-After, nothing recorded.
    assert "Retry-After" not in response.headers and "X-Inference-Id" not in response.headers


def test_credit_ceiling_is_403(server: str) -> None:
    response = _until_denied(server, "pio_sk_test_capped", "/gliner-2", GLINER2)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "credit_ceiling_reached"


@pytest.mark.parametrize(
    "path,body",
    [
        ("/inference", {**NATIVE, "project_id": "project-shared"}),
        ("/v1/chat/completions", {**CHAT, "metadata": {"project_id": "project-shared"}}),
        ("/v1/messages", {**MESSAGES, "metadata": {"project_id": "project-shared"}}),
    ],
    ids=["native", "openai", "anthropic"],
)
def test_project_attribution(server: str, path: str, body: dict[str, Any]) -> None:
    allowed = post(server, path, body, "pio_sk_test_gamma")
    assert allowed.status_code == 200, allowed.text
    refused = post(server, path, body, "pio_sk_test_alpha")
    assert refused.status_code == 403, refused.text
    assert "project-shared" in refused.text
    with httpx.Client(base_url=server, headers={"X-API-Key": "pio_sk_test_gamma"}) as gamma:
        record = gamma.get(
            "/inferences", params={"project_id": "project-shared", "limit": 1}
        ).json()["inferences"][0]
    assert record["project_id"] == "project-shared"
