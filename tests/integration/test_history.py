"""Inference history over the real app: records, filters, feedback, tenants, store: false."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from ray import serve

from tests.conftest import TINY_ID, TINY_JOB_ID
from tests.integration.canary import assert_kept_nowhere, strings_in_parquet
from tests.integration.conftest import APP_NAME, OTHER_KEY

TEXT = "Tim Cook works for Apple in Cupertino."
SCHEMA = {"entities": ["person", "organization"]}


def recorder() -> Any:
    return serve.get_deployment_handle("Recorder", APP_NAME)


def infer(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body = {"model_id": TINY_ID, "text": TEXT, "schema": SCHEMA, "threshold": 0.3, **body}
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_record_is_readable_as_soon_as_the_post_returns(client: httpx.Client) -> None:
    body = infer(client)
    record = client.get(f"/inferences/{body['inference_id']}").json()
    assert record["id"] == body["inference_id"]
    assert record["model_id"] == TINY_ID and record["base_model"] == TINY_ID
    assert record["task"] == "extract_entities" and record["format"] == "native"
    assert record["status"] == "success" and record["source"] == "api"
    assert record["input"] == TEXT and record["metadata"]["schema"] == SCHEMA
    assert record["output"] == body["result"]
    assert record["input_tokens"] == body["token_usage"] == record["tokens"]
    assert record["project_id"] == "project-alpha" and record["user_id"].startswith("key_")
    created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
    listed = client.get("/inferences", params={"limit": 1}).json()
    assert listed["inferences"][0]["id"] == body["inference_id"]  # newest first


def test_job_records_carry_the_training_job(client: httpx.Client) -> None:
    body = infer(client, model_id=TINY_JOB_ID)
    record = client.get(f"/inferences/{body['inference_id']}").json()
    assert record["training_job_id"] == TINY_JOB_ID and record["base_model"] == TINY_ID
    listed = client.get("/inferences", params={"training_job_id": TINY_JOB_ID}).json()
    assert body["inference_id"] in {r["id"] for r in listed["inferences"]}
    assert all(r["training_job_id"] == TINY_JOB_ID for r in listed["inferences"])


def test_failed_requests_are_recorded_as_failed(client: httpx.Client) -> None:
    missing = f"nobody/{uuid.uuid4().hex}"
    response = client.post("/inference", json={"model_id": missing, "text": TEXT, "schema": SCHEMA})
    assert response.status_code == 404
    listed = client.get("/inferences", params={"model_id": missing}).json()
    assert listed["total"] == 1
    record = listed["inferences"][0]
    assert record["status"] == "failed" and record["error_type"] == "model_not_found"
    assert record["output"] is None and missing in record["error_message"]


def test_filters_and_pagination(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    since = datetime.now(UTC).isoformat()
    classify = {"classifications": [{"task": f"t{tag}", "labels": ["a", "b"]}]}
    ids = [infer(client, text=f"{TEXT} {tag} {i}")["inference_id"] for i in range(5)]
    combined = infer(client, text=f"{TEXT} {tag}", schema={**SCHEMA, **classify})
    everything = client.get("/inferences", params={"since": since, "limit": 500}).json()
    assert everything["total"] == 6
    assert [r["id"] for r in everything["inferences"]][1:] == ids[::-1]  # newest first

    page = client.get("/inferences", params={"since": since, "limit": 2, "offset": 2}).json()
    assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == 2
    assert [r["id"] for r in page["inferences"]] == [ids[3], ids[2]]

    classified = client.get("/inferences", params={"since": since, "task": "classify_text"})
    assert [r["id"] for r in classified.json()["inferences"]] == [combined["inference_id"]]
    exact = client.get(
        "/inferences", params={"since": since, "task": "extract_entities+classify_text"}
    )
    assert exact.json()["total"] == 1
    entities = client.get("/inferences", params={"since": since, "task": "extract_entities"})
    assert entities.json()["total"] == 6

    by_model = client.get("/inferences", params={"since": since, "model_id": TINY_ID}).json()
    assert by_model["total"] == 6
    assert client.get("/inferences", params={"since": since, "model_id": "x"}).json()["total"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/inferences", params={"since": future}).json()["total"] == 0
    until = client.get("/inferences", params={"since": since, "until": since}).json()
    assert until["total"] == 0
    project = client.get("/inferences", params={"since": since, "project_id": "project-alpha"})
    assert project.json()["total"] == 6


def test_filter_values_are_bound_not_spliced(client: httpx.Client) -> None:
    for hostile in ["x' OR '1'='1", "'; DROP TABLE inferences; --", "%", "*"]:
        response = client.get("/inferences", params={"model_id": hostile})
        assert response.status_code == 200 and response.json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"offset": -1},
        {"since": "yesterday"},
        {"until": "2026-13-45"},
        {"latency_min": -5},
    ],
)
def test_bad_filter_values_are_422(client: httpx.Client, params: dict[str, Any]) -> None:
    response = client.get("/inferences", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_unknown_inference_is_404(client: httpx.Client) -> None:
    response = client.get(f"/inferences/{uuid.uuid4()}")
    assert response.status_code == 404 and "not found" in response.json()["detail"]


def test_feedback_round_trip(client: httpx.Client) -> None:
    inference_id = infer(client)["inference_id"]
    assert client.get(f"/inferences/{inference_id}/feedback").status_code == 404

    posted = client.post(f"/inferences/{inference_id}/feedback", json={"verdict": "correct"})
    assert posted.status_code == 200
    assert posted.json()["inference_id"] == inference_id
    assert posted.json()["human_verdict"] == "correct"

    correction = {"entities": {"person": ["Tim Cook"], "organization": ["Apple"]}}
    posted = client.post(
        f"/inferences/{inference_id}/feedback",
        json={"verdict": "incorrect", "corrected_output": correction, "notes": "missed Apple"},
    )
    assert posted.status_code == 200
    feedback = client.get(f"/inferences/{inference_id}/feedback").json()
    assert feedback["verdict"] == "incorrect" and feedback["corrected_output"] == correction
    record = client.get(f"/inferences/{inference_id}").json()
    assert record["human_verdict"] == "incorrect"
    assert record["human_corrected_output"] == correction
    assert record["human_feedback_notes"] == "missed Apple"
    assert record["human_feedback_at"] == posted.json()["human_feedback_at"]
    listed = client.get("/inferences", params={"limit": 500}).json()["inferences"]
    assert next(r for r in listed if r["id"] == inference_id)["human_verdict"] == "incorrect"


def test_older_correction_body_is_accepted(client: httpx.Client) -> None:
    inference_id = infer(client)["inference_id"]
    correction = {"entities": [{"text": "Apple", "label": "organization", "start": 19, "end": 24}]}
    posted = client.post(f"/inferences/{inference_id}/feedback", json={"correction": correction})
    assert posted.status_code == 200 and posted.json()["human_verdict"] == "incorrect"
    feedback = client.get(f"/inferences/{inference_id}/feedback").json()
    assert feedback["corrected_output"] == correction


@pytest.mark.parametrize(
    "body",
    [
        {"verdict": "incorrect"},
        {"verdict": "maybe"},
        {},
        {"verdict": "correct", "notes": "x" * 5001},
        {"verdict": "correct", "extra": 1},
    ],
)
def test_bad_feedback_is_422(client: httpx.Client, body: dict[str, Any]) -> None:
    inference_id = infer(client)["inference_id"]
    response = client.post(f"/inferences/{inference_id}/feedback", json=body)
    assert response.status_code == 422, response.text


def test_feedback_on_unknown_inference_is_404(client: httpx.Client) -> None:
    response = client.post(f"/inferences/{uuid.uuid4()}/feedback", json={"verdict": "correct"})
    assert response.status_code == 404


def test_tenants_see_only_their_own_project(client: httpx.Client, server: str) -> None:
    mine = infer(client)["inference_id"]
    with httpx.Client(base_url=server, headers={"X-API-Key": OTHER_KEY}, timeout=60) as other:
        theirs = infer(other)["inference_id"]
        assert other.get(f"/inferences/{mine}").status_code == 404
        assert (
            other.post(f"/inferences/{mine}/feedback", json={"verdict": "correct"}).status_code
            == 404
        )
        seen = other.get("/inferences", params={"limit": 500}).json()["inferences"]
        assert {r["project_id"] for r in seen} == {"project-beta"}
        assert theirs in {r["id"] for r in seen} and mine not in {r["id"] for r in seen}
        asked_for_alpha = other.get("/inferences", params={"project_id": "project-alpha"}).json()
        assert asked_for_alpha["total"] == 0
        usage = other.get("/usage").json()["usage"]
        assert {row["project_id"] for row in usage} == {"project-beta"}
    assert client.get(f"/inferences/{theirs}").status_code == 404
    assert client.get(f"/inferences/{mine}").status_code == 200


def test_store_false_keeps_nothing_but_the_bill(client: httpx.Client, history_root: Path) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    control = f"CONTROL-{uuid.uuid4().hex}"
    hidden = infer(client, text=f"{TEXT} {canary}", store=False)
    chat = {
        "model": "pioneer-test/llama-tiny-test",
        "messages": [{"role": "user", "content": f"hello {canary}"}],
        "max_tokens": 4,
        "store": False,
    }
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    chat["stream"] = True
    assert canary not in client.post("/v1/chat/completions", json=chat).text
    shown = infer(client, text=f"{TEXT} {control}")
    failed = client.post(
        "/inference",
        json={"model_id": "missing/model", "text": canary, "schema": SCHEMA, "store": False},
    )
    assert failed.status_code == 404
    assert uuid.UUID(hidden["inference_id"])
    assert client.get(f"/inferences/{hidden['inference_id']}").status_code == 404
    recorder().flush.remote().result()

    assert_kept_nowhere(canary, history_root)
    # the same search finds a stored payload: it can fail
    assert control in strings_in_parquet(history_root)

    billing = duckdb.execute(
        "SELECT id, input_tokens, status FROM read_parquet(?) WHERE id = ?",
        [str(history_root / "billing" / "*" / "*.parquet"), hidden["inference_id"]],
    ).fetchall()
    assert billing == [(hidden["inference_id"], hidden["token_usage"], "success")]
    assert shown["inference_id"] != hidden["inference_id"]


def test_every_inference_is_billed_once(client: httpx.Client, history_root: Path) -> None:
    ids = [infer(client, store=i % 2 == 0)["inference_id"] for i in range(6)]
    recorder().flush.remote().result()
    counts = dict(
        duckdb.execute(
            "SELECT id, count(*) FROM read_parquet(?) WHERE list_contains(?, id) GROUP BY id",
            [str(history_root / "billing" / "*" / "*.parquet"), ids],
        ).fetchall()
    )
    assert counts == {inference_id: 1 for inference_id in ids}


def test_usage_sums_tokens_and_cost(client: httpx.Client) -> None:
    before = {r["model_id"]: r for r in client.get("/usage").json()["usage"]}
    tokens = sum(infer(client)["token_usage"] for _ in range(3))
    after = {r["model_id"]: r for r in client.get("/usage").json()["usage"]}
    grown = after[TINY_ID]
    previous = before.get(TINY_ID, {"inferences": 0, "input_tokens": 0, "cost_usd": 0.0})
    assert grown["inferences"] - previous["inferences"] == 3
    assert grown["input_tokens"] - previous["input_tokens"] == tokens
    assert grown["cost_usd"] - previous["cost_usd"] == pytest.approx(tokens * 0.15 / 1e6)
