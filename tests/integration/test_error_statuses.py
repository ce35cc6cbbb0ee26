"""errors.mdx's rows that need a running server, each in the door's own shape: 409 for a
model in the catalog that this server cannot serve, and Anthropic's envelope on any route
for a request carrying `anthropic-version`. (425/429/402/403/500: tests/unit/test_quotas.py
and tests/integration/test_limits.py.)"""

from __future__ import annotations

import httpx

from tests.conftest import TINY_ID

HUB_ONLY = "fastino/gliner2-base-v1"  # in the catalog; no hub here, so not servable
TEXT = "Tim Cook is the CEO of Apple."
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def test_a_model_that_cannot_be_served_is_409_in_every_door(client: httpx.Client) -> None:
    native = client.post("/inference", json={"model_id": HUB_ONLY, "text": TEXT, "schema": ["a"]})
    assert native.status_code == 409 and HUB_ONLY in native.json()["detail"]
    chat = {"model": HUB_ONLY, "messages": [{"role": "user", "content": TEXT}], "schema": ["a"]}
    openai = client.post("/v1/chat/completions", json=chat)
    assert openai.status_code == 409
    assert openai.json()["error"]["code"] == "model_unavailable"
    anthropic = client.post("/v1/messages", json={**chat, "max_tokens": 8}, headers=ANTHROPIC)
    assert anthropic.status_code == 409
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["message"]


def test_anthropic_version_gets_anthropics_envelope_on_any_route(client: httpx.Client) -> None:
    bad = client.post(
        "/inference", json={"model_id": TINY_ID, "text": "", "schema": ["a"]}, headers=ANTHROPIC
    )
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"
    assert bad.json()["error"]["type"] == "invalid_request_error"
    missing = client.get("/inferences/no-such-id", headers=ANTHROPIC)
    assert missing.status_code == 404
    assert missing.json() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": missing.json()["error"]["message"]},
    }
    plain = client.get("/inferences/no-such-id")
    assert plain.status_code == 404 and "detail" in plain.json()
