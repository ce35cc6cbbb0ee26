"""POST /inference over real HTTP against the real app, checked against GLiNER2 in-process."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import httpx
import pytest

from app.translators.native import parse_request
from app.translators.schema import to_gliner2_schema
from tests.conftest import TINY_DIR, TINY_ID, TINY_JOB_DIR, TINY_JOB_ID
from tests.helpers import assert_close

TEXT = "Tim Cook is the CEO of Apple and works in Cupertino, California."
TEXTS = [
    TEXT,
    "Sundar Pichai joined Google in London.",
    "Microsoft bought a company in Seattle for a billion dollars.",
]
LOW = 0.3  # random weights: confidences sit near 0.5, so keep the threshold low


@cache
def _model(path: str) -> Any:
    from gliner2 import GLiNER2

    return GLiNER2.from_pretrained(path)


def in_process(
    model_dir: str, texts: list[str], schema: Any, threshold: float = LOW, **flags: bool
) -> list[dict[str, Any]]:
    """What GLiNER2 itself returns for the same model, texts and (translated) schema."""
    from gliner2 import Schema

    wire = parse_request({"model_id": "x", "text": texts, "schema": schema})
    compiled = Schema.from_dict(to_gliner2_schema(wire.schema_))
    return _model(model_dir).batch_extract(
        texts,
        [compiled] * len(texts),
        threshold=threshold,
        include_confidence=flags.get("include_confidence", True),
        include_spans=flags.get("include_spans", True),
    )


def renamed_relations(result: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """gliner2 2.1.0 keys a described relation 'name: description'; the server says 'name'."""
    relations = {
        renames.get(key, key): value
        for key, value in result["relation_extraction"].items()
        if key not in renames.values()
    }
    return {**result, "relation_extraction": relations}


def infer(client: httpx.Client, **body: Any) -> httpx.Response:
    body.setdefault("model_id", TINY_ID)
    body.setdefault("threshold", LOW)
    return client.post("/inference", json=body)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "entities",
    [
        ["person", "organization", "location"],
        [
            {"name": "person", "description": "a human"},
            {"name": "organization"},
            {"name": "location"},
        ],
        {"person": "a human being", "organization": "a company", "location": "a place"},
    ],
    ids=["names", "objects", "mapping"],
)
def test_entities_in_every_input_form(client: httpx.Client, entities: Any) -> None:
    body = ok(infer(client, text=TEXT, schema={"entities": entities}))
    assert set(body["result"]["entities"]) == {"person", "organization", "location"}
    assert any(body["result"]["entities"].values()), "the tiny model finds spans at 0.3"
    assert_close(body["result"], in_process(str(TINY_DIR), [TEXT], {"entities": entities})[0])


def test_response_shape_and_headers(client: httpx.Client) -> None:
    response = infer(client, text=TEXT, schema=["person"])
    body = ok(response)
    assert set(body) == {
        "type",
        "inference_id",
        "result",
        "model_id",
        "latency_ms",
        "token_usage",
        "model_used",
    }
    assert body["type"] == "encoder"
    assert uuid.UUID(body["inference_id"])
    assert response.headers["x-inference-id"] == body["inference_id"]
    assert body["model_id"] == TINY_ID and body["model_used"] == TINY_ID
    assert body["latency_ms"] > 0
    tokenizer = _model(str(TINY_DIR)).processor.tokenizer
    assert body["token_usage"] == len(tokenizer(TEXT, add_special_tokens=False)["input_ids"])


def test_deprecated_flat_list_means_entities(client: httpx.Client) -> None:
    flat = ok(infer(client, text=TEXT, schema=["person", "location"]))["result"]
    unified = ok(infer(client, text=TEXT, schema={"entities": ["person", "location"]}))["result"]
    assert flat == unified


def test_single_label_classification(client: httpx.Client) -> None:
    schema = {"classifications": [{"task": "sentiment", "labels": ["positive", "negative"]}]}
    result = ok(infer(client, text=TEXT, schema=schema))["result"]
    assert result["sentiment"]["label"] in {"positive", "negative"}
    assert 0.0 <= result["sentiment"]["confidence"] <= 1.0
    assert_close(result, in_process(str(TINY_DIR), [TEXT], schema)[0])


def test_multi_label_classification(client: httpx.Client) -> None:
    labels = ["business", "technology", "sports"]
    schema = {
        "classifications": [
            {"task": "topic", "labels": labels, "multi_label": True, "cls_threshold": 0.0}
        ]
    }
    result = ok(infer(client, text=TEXT, schema=schema))["result"]
    assert isinstance(result["topic"], list)
    assert {item["label"] for item in result["topic"]} == set(labels)
    assert_close(result, in_process(str(TINY_DIR), [TEXT], schema)[0])


def test_structures(client: httpx.Client) -> None:
    schema = {
        "structures": {
            "executive": {
                "fields": [
                    {"name": "name", "dtype": "str"},
                    {"name": "company", "dtype": "str", "description": "employer"},
                    {"name": "role", "choices": ["ceo", "engineer"]},
                ]
            }
        }
    }
    result = ok(infer(client, text=TEXT, schema=schema))["result"]
    assert isinstance(result["executive"], list) and result["executive"]
    assert set(result["executive"][0]) <= {"name", "company", "role"}
    assert_close(result, in_process(str(TINY_DIR), [TEXT], schema)[0])


def test_relations(client: httpx.Client) -> None:
    schema = {"relations": ["works_for", "located_in"]}
    result = ok(infer(client, text=TEXT, schema=schema))["result"]
    assert set(result["relation_extraction"]) == {"works_for", "located_in"}
    assert_close(result, in_process(str(TINY_DIR), [TEXT], schema)[0])


def test_described_relations_keep_their_names(client: httpx.Client) -> None:
    schema = {"relations": ["works_for", {"name": "located_in", "description": "place of"}]}
    result = ok(infer(client, text=TEXT, schema=schema))["result"]
    assert set(result["relation_extraction"]) == {"works_for", "located_in"}
    expected = in_process(str(TINY_DIR), [TEXT], schema)[0]
    assert "located_in: place of" in expected["relation_extraction"]
    renamed = renamed_relations(expected, {"located_in: place of": "located_in"})
    assert_close(result, renamed)


COMBINED = {
    "entities": ["person", "organization"],
    "classifications": [{"task": "sentiment", "labels": ["positive", "negative", "neutral"]}],
    "structures": {"deal": {"fields": [{"name": "buyer", "dtype": "str"}, {"name": "price"}]}},
    "relations": ["works_for"],
}


def test_combined_schema_batch_fidelity(client: httpx.Client) -> None:
    """Results over HTTP equal GLiNER2.batch_extract in-process: same model, texts, schema."""
    body = ok(infer(client, text=TEXTS, schema=COMBINED))
    assert isinstance(body["result"], list) and len(body["result"]) == len(TEXTS)
    assert_close(body["result"], in_process(str(TINY_DIR), TEXTS, COMBINED))
    for result in body["result"]:
        assert {"entities", "sentiment", "deal", "relation_extraction"} <= set(result)


def test_batch_keeps_input_order(client: httpx.Client) -> None:
    batch = ok(infer(client, text=TEXTS, schema=COMBINED))["result"]
    singles = [ok(infer(client, text=text, schema=COMBINED))["result"] for text in TEXTS]
    assert_close(batch, singles)
    assert batch[0] != batch[1]


@pytest.mark.parametrize("confidence", [True, False])
@pytest.mark.parametrize("spans", [True, False])
def test_confidence_and_span_flags(client: httpx.Client, confidence: bool, spans: bool) -> None:
    schema = {"entities": ["person", "organization"]}
    result = ok(
        infer(client, text=TEXT, schema=schema, include_confidence=confidence, include_spans=spans)
    )["result"]
    found = [item for items in result["entities"].values() for item in items]
    assert found
    for item in found:
        if not confidence and not spans:
            assert isinstance(item, str)
        else:
            assert isinstance(item, dict) and "text" in item
            assert ("confidence" in item) == confidence
            assert ("start" in item and "end" in item) == spans
            if spans:
                assert TEXT[item["start"] : item["end"]] == item["text"]
    flags = {"include_confidence": confidence, "include_spans": spans}
    assert_close(result, in_process(str(TINY_DIR), [TEXT], schema, **flags)[0])


def test_defaults_include_confidence_and_spans(client: httpx.Client) -> None:
    body = client.post(
        "/inference",
        json={"model_id": TINY_ID, "text": TEXT, "schema": ["person"], "threshold": LOW},
    )
    item = next(iter(ok(body)["result"]["entities"]["person"]))
    assert {"text", "confidence", "start", "end"} <= set(item)


def test_threshold_filters(client: httpx.Client) -> None:
    schema = {"entities": ["person", "organization", "location"]}
    loose = ok(infer(client, text=TEXT, schema=schema, threshold=0.0))["result"]["entities"]
    strict = ok(infer(client, text=TEXT, schema=schema, threshold=0.99))["result"]["entities"]
    assert sum(map(len, loose.values())) > sum(map(len, strict.values()))


def test_job_id_routes_to_its_own_checkpoint(client: httpx.Client) -> None:
    base = ok(infer(client, text=TEXTS, schema=COMBINED))
    job = ok(infer(client, model_id=TINY_JOB_ID, text=TEXTS, schema=COMBINED))
    assert job["model_id"] == TINY_JOB_ID and job["model_used"] == TINY_JOB_ID
    assert job["result"] != base["result"]
    assert_close(job["result"], in_process(str(TINY_JOB_DIR), TEXTS, COMBINED))
    # and the base model is untouched by the job's weights on the same replica
    assert_close(ok(infer(client, text=TEXTS, schema=COMBINED))["result"], base["result"])


def test_alias_resolves_to_base_model(client: httpx.Client) -> None:
    by_alias = ok(infer(client, model_id="tiny-encoder", text=TEXT, schema=["person"]))
    by_id = ok(infer(client, text=TEXT, schema=["person"]))
    assert by_alias["result"] == by_id["result"]
    assert by_alias["model_used"] == TINY_ID


def test_unknown_model_is_404(client: httpx.Client) -> None:
    response = infer(client, model_id="nobody/no-such-model", text=TEXT, schema=["person"])
    assert response.status_code == 404
    assert "no-such-model" in response.json()["detail"]


def test_unreachable_hub_model_is_409_with_a_fix(client: httpx.Client) -> None:
    """In the catalog but not servable here: errors.mdx's 409 Conflict."""
    response = infer(client, model_id="fastino/gliner2-base-v1", text=TEXT, schema=["person"])
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "fastino/gliner2-base-v1" in detail and "allow_downloads" in detail


def test_generate_on_an_encoder_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/inference",
        json={
            "model_id": TINY_ID,
            "task": "generate",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 400
    assert "encoder" in response.json()["detail"]
