"""The gliner2 SDK's own client (`GLiNER2API`), unchanged, against the running server.

Every public method, each answer equal to the same request sent through POST /inference
(the session server's /gliner-2 model is the tiny test encoder: configs/test.yaml).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gliner2 import GLiNER2API
from gliner2.api_client import ValidationError as ClientValidationError
from gliner2.inference.chunking import merge_chunk_results, split_text_into_chunks

from tests.conftest import TINY_ID, TINY_JOB_ID
from tests.integration.conftest import API_KEY
from tests.integration.test_extraction import TEXT, TEXTS

LOW = 0.3
LABELS = ["person", "organization", "location"]
LONG = " ".join(TEXTS * 30)  # several of the client's chunks


@pytest.fixture(scope="module")
def api(server: str) -> Iterator[GLiNER2API]:
    with GLiNER2API(api_key=API_KEY, api_base_url=server, max_retries=0) as client:
        yield client


def native(
    client: httpx.Client,
    text: str | list[str],
    schema: Any,
    partition: int | None = None,
    **flags: bool,
) -> Any:
    """The same request through POST /inference; a list in the client's own partitions (one
    request each, so each runs as the same engine batch the client's request ran as)."""
    if partition is not None:
        assert isinstance(text, list)
        return [
            result
            for start in range(0, len(text), partition)
            for result in native(client, text[start : start + partition], schema, **flags)
        ]
    body = {
        "model_id": TINY_ID,
        "text": text,
        "schema": schema,
        "threshold": LOW,
        "include_confidence": flags.get("include_confidence", False),
        "include_spans": flags.get("include_spans", False),
    }
    response = client.post("/inference", json=body)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def native_long(client: httpx.Client, text: str, schema: Any, **flags: bool) -> dict[str, Any]:
    """What the client's *_long methods do, with POST /inference as the server."""
    chunks = split_text_into_chunks(text, chunk_size=384, chunk_overlap=64)
    parts = native(
        client,
        [c.text for c in chunks],
        schema,
        partition=8,  # the client's default batch_size
        include_confidence=True,
        include_spans=True,
    )
    return merge_chunk_results(
        text,
        chunks,
        parts,
        include_confidence=flags.get("include_confidence", False),
        include_spans=flags.get("include_spans", False),
    )


def test_extract_entities(api: GLiNER2API, client: httpx.Client) -> None:
    got = api.extract_entities(TEXT, LABELS, threshold=LOW)
    assert got == native(client, TEXT, {"entities": LABELS})
    assert set(got["entities"]) == set(LABELS)
    rich = api.extract_entities(
        TEXT, LABELS, threshold=LOW, include_confidence=True, include_spans=True
    )
    assert rich == native(
        client, TEXT, {"entities": LABELS}, include_confidence=True, include_spans=True
    )


def test_batch_extract_entities_in_order(api: GLiNER2API, client: httpx.Client) -> None:
    texts = TEXTS * 3  # 9 texts in partitions of 4: several requests, order kept
    got = api.batch_extract_entities(texts, LABELS, batch_size=4, threshold=LOW)
    assert got == native(client, texts, {"entities": LABELS}, partition=4)


def test_classify_text_one_task(api: GLiNER2API, client: httpx.Client) -> None:
    got = api.classify_text(TEXT, {"sentiment": ["positive", "negative"]}, threshold=LOW)
    expected = native(
        client,
        TEXT,
        {"classifications": [{"task": "classification", "labels": ["positive", "negative"]}]},
    )
    assert got == {"sentiment": expected["classification"]}


def test_classify_text_several_tasks(api: GLiNER2API, client: httpx.Client) -> None:
    tasks = {
        "sentiment": ["positive", "negative"],
        "topic": {"labels": ["tech", "travel", "food"], "multi_label": True, "cls_threshold": 0.3},
    }
    got = api.classify_text(TEXT, tasks, threshold=LOW)
    unified = [
        {"task": "sentiment", "labels": ["positive", "negative"]},
        {
            "task": "topic",
            "labels": ["tech", "travel", "food"],
            "multi_label": True,
            "cls_threshold": 0.3,
        },
    ]
    assert got == native(client, TEXT, {"classifications": unified})
    assert api.batch_classify_text(TEXTS, tasks, threshold=LOW) == native(
        client, TEXTS, {"classifications": unified}
    )


STRUCTURES = {
    "deal": ["buyer::str::who buys", "price", "kind::[merger|acquisition]::str", "notes::list"]
}
UNIFIED_STRUCTURES = {
    "deal": {
        "fields": [
            {"name": "buyer", "dtype": "str", "description": "who buys"},
            {"name": "price"},
            {"name": "kind", "choices": ["merger", "acquisition"], "dtype": "str"},
            {"name": "notes", "dtype": "list"},
        ]
    }
}


def test_extract_json(api: GLiNER2API, client: httpx.Client) -> None:
    got = api.extract_json(TEXT, STRUCTURES, threshold=LOW)
    assert got == native(client, TEXT, {"structures": UNIFIED_STRUCTURES})
    assert api.batch_extract_json(TEXTS, STRUCTURES, threshold=LOW) == native(
        client, TEXTS, {"structures": UNIFIED_STRUCTURES}
    )


def test_extract_relations(api: GLiNER2API, client: httpx.Client) -> None:
    got = api.extract_relations(TEXT, ["works_for", "located_in"], threshold=LOW)
    assert got == native(client, TEXT, {"relations": ["works_for", "located_in"]})
    assert "relation_extraction" in got
    batch = api.batch_extract_relations(TEXTS, ["works_for"], threshold=LOW)
    assert batch == native(client, TEXTS, {"relations": ["works_for"]})


def test_extract_with_the_sdk_schema_builder(api: GLiNER2API, client: httpx.Client) -> None:
    schema = (
        api.create_schema()
        .entities(["person", "organization"], dtype="str", threshold=0.35)
        .classification("sentiment", ["positive", "negative"], multi_label=False)
        .structure("deal")
        .field("buyer", dtype="str", threshold=0.3)
        .field("price", description="amount")
        .relations(["works_for"], threshold=0.4)
    )
    got = api.extract(TEXT, schema, threshold=LOW, include_confidence=True)
    unified = {
        "entities": {
            "person": {"dtype": "str", "threshold": 0.35},
            "organization": {"dtype": "str", "threshold": 0.35},
        },
        "classifications": [
            {"task": "sentiment", "labels": ["positive", "negative"], "cls_threshold": 0.5}
        ],
        "structures": {
            "deal": {
                "fields": [
                    {"name": "buyer", "dtype": "str", "threshold": 0.3},
                    {"name": "price", "dtype": "list", "description": "amount"},
                ]
            }
        },
        "relations": {"works_for": {"threshold": 0.4}},
    }
    assert got == native(client, TEXT, unified, include_confidence=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns that per-text schemas go one by one
        batch = api.batch_extract(TEXTS, schema, batch_size=2, threshold=LOW)
    assert batch == native(client, TEXTS, unified, partition=2)


def test_long_variants_merge_like_inference(api: GLiNER2API, client: httpx.Client) -> None:
    assert api.extract_entities_long(LONG, LABELS, threshold=LOW) == {
        "entities": native_long(client, LONG, {"entities": LABELS})["entities"]
    }
    assert api.extract_json_long(LONG, STRUCTURES, threshold=LOW) == native_long(
        client, LONG, {"structures": UNIFIED_STRUCTURES}
    )
    assert api.extract_relations_long(LONG, ["works_for"], threshold=LOW) == native_long(
        client, LONG, {"relations": ["works_for"]}
    )
    tasks = {"sentiment": ["positive", "negative"]}
    assert api.classify_text_long(LONG, tasks, threshold=LOW) == native_long(
        client, LONG, {"classifications": [{"task": "sentiment", "labels": tasks["sentiment"]}]}
    )
    schema = {"entities": LABELS, "relations": ["works_for"]}
    assert api.extract_long(LONG, schema, threshold=LOW) == native_long(client, LONG, schema)
    assert api.batch_extract_long([LONG], schema, threshold=LOW) == [
        native_long(client, LONG, schema)
    ]
    assert api.batch_extract_json_long([LONG], STRUCTURES, threshold=LOW) == [
        native_long(client, LONG, {"structures": UNIFIED_STRUCTURES})
    ]
    assert api.batch_extract_relations_long([LONG], ["works_for"], threshold=LOW) == [
        native_long(client, LONG, {"relations": ["works_for"]})
    ]
    assert api.batch_classify_text_long([LONG], tasks, threshold=LOW) == [
        native_long(
            client, LONG, {"classifications": [{"task": "sentiment", "labels": tasks["sentiment"]}]}
        )
    ]
    assert api.batch_extract_entities_long([LONG], LABELS, threshold=LOW)[0] == {
        "entities": native_long(client, LONG, {"entities": LABELS})["entities"]
    }


def test_format_results_false_keeps_confidence_and_spans(api: GLiNER2API) -> None:
    raw = api.extract_entities(TEXT, LABELS, threshold=LOW, format_results=False)
    spans = [span for found in raw["entities"].values() for span in found]
    assert spans and all({"confidence", "start", "end"} <= set(span) for span in spans)


def test_bad_schema_is_the_clients_validation_error(api: GLiNER2API) -> None:
    with pytest.raises(ClientValidationError) as caught:
        api.classify_text(TEXT, {"sentiment": ["only-one"]})
    assert caught.value.status_code == 422


def test_records_carry_the_door(client: httpx.Client, server: str) -> None:
    response = httpx.post(
        f"{server}/gliner-2",
        json={"task": "extract_entities", "text": TEXT, "schema": LABELS, "threshold": LOW},
        headers={"X-API-Key": API_KEY},
    )
    assert response.status_code == 200, response.text
    record = client.get(f"/inferences/{response.headers['X-Inference-Id']}").json()
    assert record["model_id"] == TINY_ID and record["task"] == "extract_entities"
    assert record["format"] == "gliner2"


def test_a_keys_own_model(server: str) -> None:
    with GLiNER2API(api_key="pio_sk_test_gamma", api_base_url=server, max_retries=0) as gamma:
        gamma.extract_entities(TEXT, LABELS, threshold=LOW)
    with httpx.Client(base_url=server, headers={"X-API-Key": "pio_sk_test_gamma"}) as http:
        latest = http.get("/inferences", params={"limit": 1}).json()["inferences"][0]
    assert latest["model_id"] == TINY_JOB_ID


def test_store_false_keeps_no_payload(client: httpx.Client, server: str) -> None:
    canary = "Zyxqv Canarysson works at Wexlorp."
    response = httpx.post(
        f"{server}/gliner-2",
        json={"task": "extract_entities", "text": canary, "schema": LABELS, "store": False},
        headers={"X-API-Key": API_KEY},
    )
    assert response.status_code == 200, response.text
    inference_id = response.json()["inference_id"]
    assert client.get(f"/inferences/{inference_id}").status_code == 404
    listed = client.get("/inferences", params={"limit": 500}).text
    assert "Canarysson" not in listed
