"""Catalog listings, liveness/readiness, and API keys, over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import TINY_ID, TINY_JOB_ID
from tests.integration.conftest import API_KEY, OTHER_KEY

GOOD = {"model_id": TINY_ID, "text": "Tim Cook works for Apple.", "schema": ["person"]}


def test_base_models_lists_the_catalog(client: httpx.Client) -> None:
    models = client.get("/base-models").json()["models"]
    by_id = {m["id"]: m for m in models}
    assert {TINY_ID, "pioneer-demo/gliner2-minilm-demo", "fastino/gliner2-base-v1"} <= set(by_id)
    assert by_id[TINY_ID]["status"] == "loaded"  # preloaded by the test config
    assert by_id["fastino/gliner2-base-v1"]["status"] == "unreachable"
    assert by_id["fastino/gliner2-base-v1"]["supports_inference"] is False
    for model in models:
        assert {"id", "display_name", "task_type", "supports_inference", "status"} <= set(model)
        assert "input_price_per_million" in model


@pytest.mark.parametrize(
    "query,check",
    [
        ("task_type=encoder", lambda m: m["task_type"] == "encoder"),
        ("supports_inference=true", lambda m: m["supports_inference"]),
        ("supports_inference=false", lambda m: not m["supports_inference"]),
    ],
)
def test_base_models_filters(client: httpx.Client, query: str, check) -> None:
    models = client.get(f"/base-models?{query}").json()["models"]
    assert models and all(check(m) for m in models)


def test_base_models_lists_decoders_and_their_state(client: httpx.Client) -> None:
    models = {m["id"]: m for m in client.get("/base-models?task_type=decoder").json()["models"]}
    assert models["pioneer-test/llama-tiny-test"]["supports_inference"] is True
    hub = models["Qwen/Qwen3-0.6B"]
    assert hub["status"] == "not_deployed" and "decoder.models" in hub["status_message"]


def test_base_models_bad_filter_is_422(client: httpx.Client) -> None:
    response = client.get("/base-models?task_type=gpu")
    assert response.status_code == 422 and "detail" in response.json()


def test_v1_models_is_an_openai_list(anonymous: httpx.Client) -> None:
    body = anonymous.get("/v1/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert TINY_ID in ids and TINY_JOB_ID in ids
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int)
        assert model["owned_by"] and model["type"] == "model" and "display_name" in model
        assert isinstance(model["ready"], bool)
    assert body["first_id"] == ids[0] and body["last_id"] == ids[-1]


def test_v1_models_pagination(anonymous: httpx.Client) -> None:
    everything = [m["id"] for m in anonymous.get("/v1/models").json()["data"]]
    page = anonymous.get("/v1/models?limit=2").json()
    assert [m["id"] for m in page["data"]] == everything[:2] and page["has_more"]
    rest = anonymous.get(f"/v1/models?after_id={page['last_id']}").json()
    assert [m["id"] for m in rest["data"]] == everything[2:]


def test_v1_model_retrieve_and_openai_404(anonymous: httpx.Client) -> None:
    assert anonymous.get(f"/v1/models/{TINY_ID}").json()["id"] == TINY_ID
    missing = anonymous.get("/v1/models/nobody/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_health_and_readiness(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}
    ready = anonymous.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and TINY_ID in ready.json()["loaded"]


def test_missing_key_is_401(anonymous: httpx.Client) -> None:
    response = anonymous.post("/inference", json=GOOD)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]


def test_wrong_key_is_401(anonymous: httpx.Client) -> None:
    response = anonymous.post("/inference", json=GOOD, headers={"X-API-Key": "pio_sk_wrong"})
    assert response.status_code == 401
    assert anonymous.get("/base-models", headers={"X-API-Key": "nope"}).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}, {"x-api-key": OTHER_KEY}],
    ids=["x-api-key", "bearer", "second-tenant"],
)
def test_both_key_headers_work(anonymous: httpx.Client, headers: dict[str, str]) -> None:
    assert anonymous.post("/inference", json=GOOD, headers=headers).status_code == 200


def test_auth_is_checked_before_the_body(anonymous: httpx.Client) -> None:
    response = anonymous.post("/inference", content=b"{broken")
    assert response.status_code == 401
