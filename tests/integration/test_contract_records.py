"""The contract, over HTTP: every record and listing from every door validates against the
OpenAPI's InferenceRecord / InferenceListResponse (`input` a string, the schema and options
under `metadata`), the `task` filter takes the documented names, and the catalog carries the
fields models.mdx documents, with /v1/models a valid ModelListResponse that the official
OpenAI and Anthropic SDKs read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import TINY_ID, TINY_JOB_ID
from tests.contract import assert_valid
from tests.contract.catalog import assert_valid_base_models

DECODER = "pioneer-test/llama-tiny-test"
TEXT = "Tim Cook works for Apple in Cupertino."
SCHEMA = {"entities": ["person", "organization"]}
EXTRA = {"schema": SCHEMA, "threshold": 0.3}
MESSAGES = [{"role": "user", "content": "hello world"}]


def record(client: httpx.Client, inference_id: str) -> dict[str, Any]:
    response = client.get(f"/inferences/{inference_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid("InferenceRecord", body)
    return body


def listing(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/inferences", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid("InferenceListResponse", body)
    return body


def gliner2_sdk(client: httpx.Client, **body: Any) -> str:
    """POST /gliner-2 (the gliner2 SDK's door); its inference id."""
    response = client.post("/gliner-2", json=body)
    assert response.status_code == 200, response.text
    return response.json()["inference_id"]


def native(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def pioneer_id(answer: Any) -> str:
    return answer.model_extra["x_pioneer"]["inference_id"]


def test_records_from_every_door_validate(
    client: httpx.Client, sdk: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    since = datetime.now(UTC).isoformat()
    tag = uuid.uuid4().hex[:8]
    text = f"{TEXT} {tag}"
    texts = [f"{TEXT} {tag} one", f"Satya Nadella runs Microsoft. {tag}"]
    system_and_user = [{"role": "system", "content": "Be brief."}, *MESSAGES]
    greedy = {"max_tokens": 4, "temperature": 0.0}
    ids: dict[str, str] = {
        "native text": native(client, model_id=TINY_ID, text=text, **EXTRA)["inference_id"],
        "native batch": native(client, model_id=TINY_ID, text=texts, **EXTRA)["inference_id"],
        "native job": native(client, model_id=TINY_JOB_ID, text=text, **EXTRA)["inference_id"],
        "gliner-2": gliner2_sdk(client, task="extract_entities", text=text, schema=["person"]),
        "gliner-2 batch": gliner2_sdk(
            client, task="schema", text=texts, schema={"entities": ["person"]}
        ),
        "native generate": native(
            client, model_id=DECODER, task="generate", messages=system_and_user, **greedy
        )["inference_id"],
        "openai chat": pioneer_id(
            sdk.chat.completions.create(model=DECODER, messages=system_and_user, **greedy)
        ),
        "openai completion": pioneer_id(
            sdk.completions.create(model=DECODER, prompt=f"Once upon {tag}", **greedy)
        ),
        "openai response": pioneer_id(
            sdk.responses.create(
                model=DECODER, input="hello", instructions="Be brief.", max_output_tokens=4
            )
        ),
        "anthropic message": pioneer_id(
            claude.messages.create(
                model=DECODER, max_tokens=4, system="Be brief.", messages=MESSAGES
            )
        ),
        "openai chat encoder": pioneer_id(
            sdk.chat.completions.create(
                model=TINY_ID, messages=[{"role": "user", "content": text}], extra_body=EXTRA
            )
        ),
        "openai response encoder": pioneer_id(
            sdk.responses.create(model=TINY_ID, input=text, extra_body=EXTRA)
        ),
        "anthropic message encoder": pioneer_id(
            claude.messages.create(
                model=TINY_ID,
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
                extra_body=EXTRA,
            )
        ),
    }
    # streams are recorded too
    list(
        sdk.chat.completions.create(
            model=DECODER,
            messages=[{"role": "user", "content": f"stream {tag}"}],
            stream=True,
            **greedy,
        )
    )
    with claude.messages.stream(
        model=DECODER, max_tokens=4, messages=[{"role": "user", "content": f"stream {tag}"}]
    ) as stream:
        ids["anthropic stream"] = stream.get_final_message().model_extra["x_pioneer"][
            "inference_id"
        ]
    # and failures, with no output and a contract error_type
    missing = f"nobody/{uuid.uuid4().hex}"
    failure = client.post("/inference", json={"model_id": missing, "text": text, "schema": SCHEMA})
    assert failure.status_code == 404
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model=missing, messages=MESSAGES, max_tokens=2)

    records = {name: record(client, inference_id) for name, inference_id in ids.items()}

    one = records["native text"]
    assert one["input"] == text and one["source"] == "api" and one["format"] == "native"
    assert one["metadata"]["input_kind"] == "text" and one["metadata"]["schema"] == SCHEMA
    assert one["metadata"]["threshold"] == 0.3 and one["metadata"]["include_spans"] is True
    assert isinstance(one["latency_ms"], int) and one["task"] == "extract_entities"

    batch = records["native batch"]
    assert json.loads(batch["input"]) == texts and batch["metadata"]["input_kind"] == "texts"
    assert records["native job"]["training_job_id"] == TINY_JOB_ID
    assert records["gliner-2"]["input"] == text and records["gliner-2"]["format"] == "gliner2"
    assert json.loads(records["gliner-2 batch"]["input"]) == texts

    for name in ("native generate", "openai chat"):
        chat = records[name]
        assert json.loads(chat["input"]) == system_and_user, name
        assert chat["metadata"]["input_kind"] == "messages" and chat["task"] == "generate"
        assert chat["metadata"]["sampling"]["max_tokens"] == 4
    completion = records["openai completion"]
    assert completion["input"] == f"Once upon {tag}"
    assert completion["metadata"]["input_kind"] == "prompt"
    assert completion["metadata"]["format"] == completion["format"] == "openai.completions"
    assert [m["role"] for m in json.loads(records["anthropic message"]["input"])] == [
        "system",
        "user",
    ]
    assert json.loads(records["openai response"]["input"])[0]["role"] == "system"
    for name in ("openai chat encoder", "openai response encoder", "anthropic message encoder"):
        assert records[name]["input"] == text and records[name]["metadata"]["schema"] == SCHEMA

    everything = listing(client, since=since)
    assert set(ids.values()) <= {r["id"] for r in everything["inferences"]}
    # + the chat stream + the native failure (a model the OpenAI door cannot resolve is
    # refused before anything runs, so it leaves no record)
    assert everything["total"] == len(everything["inferences"]) == len(ids) + 2
    formats = {r["format"] for r in everything["inferences"]}
    assert {"native", "gliner2", "openai.chat", "openai.completions", "openai.responses"} <= formats
    assert "anthropic.messages" in formats
    failed = [r for r in everything["inferences"] if r["status"] == "failed"]
    assert {r["model_id"] for r in failed} == {missing}
    assert all(r["output"] is None and r["error_type"] == "model_not_found" for r in failed)


def test_every_listed_record_validates(client: httpx.Client) -> None:
    """Whatever the session's other tests recorded (hostile input, failures, feedback,
    tenants) lists as valid records, page by page."""
    native(client, model_id=TINY_ID, text=TEXT, schema=SCHEMA)
    first = listing(client)
    assert first["inferences"] and first["limit"] == 500 and first["offset"] == 0
    page = listing(client, limit=3, offset=1)
    assert [r["id"] for r in page["inferences"]] == [r["id"] for r in first["inferences"][1:4]]


def test_feedback_joined_records_validate(client: httpx.Client) -> None:
    inference_id = native(client, model_id=TINY_ID, text=TEXT, schema=SCHEMA)["inference_id"]
    assert "human_verdict" not in record(client, inference_id)  # no feedback: left out
    correction = {"entities": {"person": ["Tim Cook"], "organization": ["Apple"]}}
    for body in (
        {"verdict": "correct"},
        {"verdict": "incorrect", "corrected_output": correction, "notes": "missed Apple"},
    ):
        posted = client.post(f"/inferences/{inference_id}/feedback", json=body)
        assert posted.status_code == 200, posted.text
        assert_valid("InferenceFeedbackResponse", posted.json())
    joined = record(client, inference_id)
    assert joined["human_verdict"] == "incorrect"
    assert joined["human_corrected_output"] == correction
    assert joined["human_feedback_notes"] == "missed Apple" and joined["human_feedback_at"]
    listed = listing(client, model_id=TINY_ID)["inferences"]
    assert next(r for r in listed if r["id"] == inference_id)["human_verdict"] == "incorrect"
    verdict_only = native(client, model_id=TINY_ID, text=TEXT, schema=SCHEMA)["inference_id"]
    client.post(f"/inferences/{verdict_only}/feedback", json={"verdict": "correct"})
    plain = record(client, verdict_only)
    assert plain["human_verdict"] == "correct" and "human_feedback_notes" not in plain


SECTIONS = {
    "entities": {"entities": ["person"]},
    "classifications": {"classifications": [{"task": "t", "labels": ["a", "b"]}]},
    "structures": {"structures": {"exec": {"fields": [{"name": "person", "dtype": "str"}]}}},
    "relations": {"relations": ["works_for"]},
}


@pytest.mark.parametrize(
    "task,expected",
    [
        ("ner", {"entities", "entities+classifications"}),
        ("extract_entities", {"entities", "entities+classifications"}),
        ("entities", {"entities", "entities+classifications"}),
        ("classification", {"classifications", "entities+classifications"}),
        ("classify_text", {"classifications", "entities+classifications"}),
        ("json", {"structures"}),
        ("structures", {"structures"}),
        ("extract_json", {"structures"}),
        ("relations", {"relations"}),
        ("extract_relations", {"relations"}),
        ("generate", {"generate"}),
        ("ner+classification", {"entities+classifications"}),
        ("classify_text+extract_entities", {"entities+classifications"}),
        ("no_such_task", set()),
    ],
)
def test_task_filter_accepts_documented_and_internal_names(
    client: httpx.Client, tagged_records: tuple[str, dict[str, str]], task: str, expected: set
) -> None:
    since, ids = tagged_records
    found = listing(client, since=since, task=task)
    assert {r["id"] for r in found["inferences"]} == {ids[name] for name in expected}
    assert found["total"] == len(expected)


@pytest.fixture(scope="module")
def tagged_records(client: httpx.Client) -> tuple[str, dict[str, str]]:
    """One record per task kind, made after `since` (the module's other records come first)."""
    since = datetime.now(UTC).isoformat()
    ids = {}
    for name, schema in SECTIONS.items():
        ids[name] = native(client, model_id=TINY_ID, text=TEXT, schema=schema)["inference_id"]
    both = {**SECTIONS["entities"], **SECTIONS["classifications"]}
    ids["entities+classifications"] = native(client, model_id=TINY_ID, text=TEXT, schema=both)[
        "inference_id"
    ]
    ids["generate"] = native(
        client, model_id=DECODER, task="generate", messages=MESSAGES, max_tokens=2
    )["inference_id"]
    return since, ids


# ---- catalog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,check",
    [
        ("", lambda m: True),
        ("supports_inference=true", lambda m: m["supports_inference"] is True),
        ("supports_inference=false", lambda m: m["supports_inference"] is False),
        ("supports_training=true", lambda m: m["supports_training"] is True),
        ("supports_training=false", lambda m: m["supports_training"] is False),
        ("task_type=encoder", lambda m: m["task_type"] == "encoder"),
        ("task_type=decoder", lambda m: m["task_type"] == "decoder"),
        ("supports_on_demand_inference=true", lambda m: m["supports_on_demand_inference"]),
        ("lifecycle=preview", lambda m: m["lifecycle"] == "preview"),
        ("task_type=encoder&supports_inference=true", lambda m: m["supports_inference"]),
    ],
)
def test_base_models_carry_the_documented_fields(client: httpx.Client, query: str, check) -> None:
    response = client.get(f"/base-models?{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid_base_models(body)
    assert body["models"] and all(check(m) for m in body["models"])


def test_base_model_values(client: httpx.Client) -> None:
    models = {m["id"]: m for m in client.get("/base-models").json()["models"]}
    tiny = models[TINY_ID]
    assert tiny["context_window"] == 512 and tiny["lifecycle"] == "preview"
    # no explicit cache discount in the catalog: cached input bills at the input rate
    assert tiny["cache_read_price_per_million"] == tiny["input_price_per_million"] == 0.15
    assert tiny["cache_write_price_per_million"] == 0.15
    # trainable, and built by the session (the demo may not be built yet when this runs)
    assert tiny["supports_training"] and tiny["supports_on_demand_inference"]
    hub = models["fastino/gliner2-base-v1"]  # not loadable offline: nothing is servable
    assert not hub["supports_inference"] and not hub["supports_on_demand_inference"]
    assert client.get("/base-models?lifecycle=beta").status_code == 422


@pytest.mark.parametrize(
    "query", ["", "limit=2", "limit=1&after_id=" + TINY_ID, "after_id=" + TINY_JOB_ID, "limit=100"]
)
def test_v1_models_is_a_model_list_response(anonymous: httpx.Client, query: str) -> None:
    body = anonymous.get(f"/v1/models?{query}").json()
    assert_valid("ModelListResponse", body)


def test_v1_models_past_the_end_is_valid(anonymous: httpx.Client) -> None:
    last = anonymous.get("/v1/models").json()["last_id"]
    body = anonymous.get("/v1/models", params={"after_id": last}).json()
    assert body["data"] == [] and body["has_more"] is False
    assert_valid("ModelListResponse", body)


def test_sdk_model_lists(sdk: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    openai_ids = [m.id for m in sdk.models.list()]
    anthropic_models = list(claude.models.list())
    assert openai_ids == [m.id for m in anthropic_models]
    assert {TINY_ID, DECODER, TINY_JOB_ID} <= set(openai_ids)
    for model in anthropic_models:
        assert model.type == "model" and model.display_name
        assert isinstance(model.created_at, datetime)
        assert model.lifecycle in ("active", "deprecated", "retired")
    tiny = next(m for m in anthropic_models if m.id == TINY_ID)
    assert tiny.max_input_tokens == 512
    page = claude.models.list(limit=2)
    assert [m.id for m in page.data] == openai_ids[:2] and page.has_more
    assert sdk.models.retrieve(TINY_ID).id == claude.models.retrieve(TINY_ID).id == TINY_ID
