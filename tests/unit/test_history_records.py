"""Record shaping without a server: what a request stores, how a stored row (new or written
by older code) reads back as the contract's InferenceRecord, the task filter's names, and the
catalog's documented fields and defaults."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.catalog import CatalogModel, load_catalog
from app.history import records
from app.history.queries import InferenceFilters
from app.history.store import HistoryStore
from app.protocol import ApiError, ExtractOptions, InferenceRequest, ResolvedModel, SamplingOptions
from deployments.resolver import ModelResolver
from tests.conftest import ROOT, TINY_ID
from tests.contract import OPENAPI_PATH, REFERENCE_PATH, assert_valid
from tests.contract.catalog import assert_valid_card
from tests.unit.test_history_store import row

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL = ResolvedModel("m", "m", "encoder", "gliner2", model_key="m", display_name="M")
SCHEMA = {"entities": ["person"], "classifications": [{"task": "t", "labels": ["a", "b"]}]}


def stored_then_read(request: InferenceRequest, **kwargs: Any) -> dict[str, Any]:
    """The row as it is stored (through a Parquet-typed round trip of its values), then read."""
    stored = records.inference_row(request, NOW, model=kwargs.pop("model", MODEL), **kwargs)
    assert isinstance(stored["input"], str) and isinstance(stored["metadata"], str)
    wire = records.to_wire(stored)
    assert_valid("InferenceRecord", wire)
    return wire


def test_one_text_is_the_input_and_the_schema_goes_to_metadata() -> None:
    request = InferenceRequest(
        model_id="m",
        task="extract",
        texts=["Tim Cook works for Apple."],
        schema=SCHEMA,
        options=ExtractOptions(threshold=0.3, include_confidence=False, include_spans=True),
    )
    record = stored_then_read(request, output={"entities": {}}, input_tokens=7, latency_ms=12.6)
    assert record["input"] == "Tim Cook works for Apple."
    assert record["task"] == "extract_entities+classify_text"
    assert record["latency_ms"] == 13 and record["source"] == "api"
    assert record["format"] == "native" and record["metadata"]["format"] == "native"
    meta = record["metadata"]
    assert meta["input_kind"] == "text" and meta["schema"] == SCHEMA
    assert (meta["threshold"], meta["include_confidence"], meta["include_spans"]) == (
        0.3,
        False,
        True,
    )
    for absent in ("training_job_id", "error_type", "error_message", "human_verdict"):
        assert absent not in record  # nothing to say: left out, never null


def test_a_batch_is_a_json_list_of_its_texts() -> None:
    texts = ["one", 'two "quoted"', "drei ü"]
    request = InferenceRequest(
        model_id="m", task="extract", texts=texts, batched=True, schema={"entities": ["x"]}
    )
    record = stored_then_read(request, output=[{}, {}, {}])
    assert json.loads(record["input"]) == texts
    assert record["metadata"]["input_kind"] == "texts" and record["metadata"]["texts"] == 3


def test_a_conversation_is_json_and_the_sampling_goes_to_metadata() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    request = InferenceRequest(
        model_id="m",
        task="generate",
        messages=messages,
        sampling=SamplingOptions(max_tokens=8, temperature=0.0, stop=("\n",)),
        source="openai.chat",
    )
    record = stored_then_read(request, output={"text": "yo"}, output_tokens=2)
    assert json.loads(record["input"]) == messages
    assert record["metadata"]["input_kind"] == "messages"
    # temperature 0.0 is a setting (greedy), not a default to drop
    assert record["metadata"]["sampling"] == {"max_tokens": 8, "temperature": 0.0, "stop": ["\n"]}
    assert record["format"] == "openai.chat" and record["task"] == "generate"


def test_a_completion_prompt_is_the_prompt_itself() -> None:
    request = InferenceRequest(
        model_id="m", task="generate", prompt="Once upon", source="openai.completions"
    )
    record = stored_then_read(request)
    assert record["input"] == "Once upon" and record["metadata"]["input_kind"] == "prompt"


def test_a_failed_inference_has_a_null_output_and_a_contract_error_type() -> None:
    request = InferenceRequest(model_id="nobody/x", task="extract", texts=["t"], schema=SCHEMA)
    record = stored_then_read(
        request, model=None, error=ApiError.model_not_found("nobody/x"), latency_ms=1.0
    )
    assert record["status"] == "failed" and record["error_type"] == "model_not_found"
    assert record["output"] is None and "model_name" not in record and "base_model" not in record


def test_a_text_that_looks_like_an_old_record_is_still_the_text() -> None:
    text = '{"text": "not the record", "schema": {}}'
    request = InferenceRequest(model_id="m", task="extract", texts=[text], schema=SCHEMA)
    assert stored_then_read(request)["input"] == text


LEGACY_METADATA = json.dumps({"texts": 1, "stream": False, "model_used": "m"})


@pytest.mark.parametrize(
    "stored,expected,kind,extra",
    [
        (
            {"text": "Tim", "schema": SCHEMA, "threshold": 0.5, "include_confidence": True},
            "Tim",
            "text",
            {"schema": SCHEMA, "threshold": 0.5, "include_confidence": True},
        ),
        ({"text": ["a", "b"], "schema": SCHEMA}, '["a", "b"]', "texts", {"schema": SCHEMA}),
        (
            {"messages": [{"role": "user", "content": "hi"}], "sampling": {"max_tokens": 4}},
            '[{"content": "hi", "role": "user"}]',
            "messages",
            {"sampling": {"max_tokens": 4}},
        ),
        ({"prompt": "Once", "sampling": {}}, "Once", "prompt", {"sampling": {}}),
    ],
    ids=["text", "batch", "messages", "prompt"],
)
def test_rows_written_by_older_code_read_back_valid(
    stored: dict, expected: str, kind: str, extra: dict
) -> None:
    old = {
        **row(1),
        "input": json.dumps(stored, sort_keys=True),
        "metadata": LEGACY_METADATA,
        "training_job_id": None,
        "error_type": None,
        "human_verdict": None,
        "human_corrected_output": None,
    }
    record = records.to_wire(old)
    assert_valid("InferenceRecord", record)
    assert record["input"] == expected
    assert record["metadata"] == {
        **json.loads(LEGACY_METADATA),
        "input_kind": kind,
        "format": "native",
        **extra,
    }


def test_odd_stored_values_still_make_a_valid_record() -> None:
    for stored_input in ['"just a string"', "not json", "[1, 2]", '{"other": 1}', None]:
        odd = {**row(1), "input": stored_input, "metadata": "null", "source": "openai.chat"}
        odd |= {"error_type": "weird", "latency_ms": None}
        record = records.to_wire(odd)
        assert_valid("InferenceRecord", record)
        assert record["source"] == "api" and record["error_type"] == "internal"
    assert records.to_wire({**row(1), "input": '"just a string"'})["input"] == "just a string"


def test_feedback_rows_keep_their_own_shape() -> None:
    feedback = records.feedback_row(
        "i", verdict="correct", corrected_output=None, notes=None, project_id=None, api_key_id=None
    )
    wire = records.to_wire(feedback)
    assert wire["corrected_output"] is None and wire["notes"] is None
    assert wire["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "name,parts",
    [
        ("ner", ["extract_entities"]),
        ("entities", ["extract_entities"]),
        ("extract_entities", ["extract_entities"]),
        ("classification", ["classify_text"]),
        ("classify_text", ["classify_text"]),
        ("json", ["extract_json"]),
        ("structures", ["extract_json"]),
        ("extract_json", ["extract_json"]),
        ("relations", ["extract_relations"]),
        ("extract_relations", ["extract_relations"]),
        ("generate", ["generate"]),
        ("NER", ["extract_entities"]),
        ("ner+classification", ["extract_entities", "classify_text"]),
        ("something_new", ["something_new"]),
    ],
)
def test_task_filter_names(name: str, parts: list[str]) -> None:
    assert records.task_filter_parts(name) == parts


def test_task_filter_aliases_over_the_store(tmp_path: Path) -> None:
    store = HistoryStore(str(tmp_path), None, gc_grace_s=0.0).open()
    tasks = {
        1: "extract_entities",
        2: "extract_entities+classify_text",
        3: "extract_json",
        4: "extract_relations",
        5: "generate",
        6: "classify_text+extract_json",
    }
    store.inferences.append([row(i, task=task) for i, task in tasks.items()])

    def ids(task: str) -> set[int]:
        rows, total = store.list_inferences(InferenceFilters(task=task))
        assert total == len(rows)
        return {int(r["id"].removeprefix("id-")) for r in rows}

    try:
        assert ids("ner") == ids("extract_entities") == {1, 2}
        assert ids("classification") == ids("classify_text") == {2, 6}
        assert ids("json") == ids("structures") == ids("extract_json") == {3, 6}
        assert ids("relations") == ids("extract_relations") == {4}
        assert ids("generate") == {5}
        # a combined value: exactly those parts, in any order, under any of their names
        assert ids("extract_entities+classify_text") == ids("classification+ner") == {2}
        assert ids("ner' OR '1'='1") == set() and ids("%") == set()
    finally:
        store.close()


# ---- catalog -----------------------------------------------------------------------------


def test_the_vendored_openapi_is_the_reference() -> None:
    if not REFERENCE_PATH.exists():
        pytest.skip("no ../shared reference next to this checkout")
    assert json.loads(OPENAPI_PATH.read_text()) == json.loads(REFERENCE_PATH.read_text())


def test_catalog_defaults_follow_models_mdx() -> None:
    base = {"id": "a", "kind": "encoder", "engine": "gliner2", "weights": {"hub_id": "x/a"}}
    plain = CatalogModel.model_validate(
        {**base, "display_name": "A", "input_price_per_million": 0.3, "context_length": 99}
    )
    # no explicit cache discount: cached input (read or written) bills at the input rate
    assert plain.cache_read_price == plain.cache_write_price == 0.3
    assert plain.context_window == 99 and plain.lifecycle == "ga"
    assert plain.on_demand is False  # not trainable: nothing to serve on-demand
    explicit = CatalogModel.model_validate(
        {
            **base,
            "display_name": "A",
            "input_price_per_million": 1.0,
            "cache_read_price_per_million": 0.1,
            "cache_write_price_per_million": 1.25,
            "supports_training": True,
            "lifecycle": "deprecated",
        }
    )
    assert (explicit.cache_read_price, explicit.cache_write_price) == (0.1, 1.25)
    assert explicit.on_demand is True and explicit.lifecycle == "deprecated"
    with pytest.raises(ValueError):
        CatalogModel.model_validate({**base, "display_name": "A", "lifecycle": "beta"})


def test_catalog_cards_carry_the_documented_fields() -> None:
    configs = ROOT / "configs"
    resolver = ModelResolver(
        str(configs / "catalog.yaml"), str(configs / "jobs.yaml"), False, [TINY_ID]
    )
    cards = asyncio.run(resolver.list_models(include_jobs=True))
    for card in cards:
        assert_valid_card(card)
    by_id = {card["id"]: card for card in cards}
    catalog = load_catalog(configs / "catalog.yaml")
    assert {m.id for m in catalog.models} <= set(by_id)
    for model in catalog.models:
        card = by_id[model.id]
        assert card["context_window"] == card["context_length"] == model.context_window
        assert card["cache_read_price_per_million"] == model.cache_read_price
    hub = by_id["fastino/gliner2-base-v1"]  # trainable, but not loadable offline
    assert hub["supports_training"] is True and hub["supports_inference"] is False
    assert hub["supports_on_demand_inference"] is False and hub["lifecycle"] == "ga"
    job = by_id["job_tiny_ner01"]
    assert job["base_model"] == TINY_ID and job["supports_training"] is False
    assert job["input_price_per_million"] == by_id[TINY_ID]["input_price_per_million"]


def test_old_parquet_rows_and_new_rows_list_together(tmp_path: Path) -> None:
    """Rows the older code published to Parquet (input a JSON object) list next to new rows,
    every one a valid record, through the store's real read path (feedback join included)."""
    store = HistoryStore(str(tmp_path), None, gc_grace_s=0.0).open()
    try:
        old = {
            **row(1),
            "input": json.dumps({"text": "old text", "schema": SCHEMA, "threshold": 0.5}),
            "metadata": LEGACY_METADATA,
        }
        store.inferences.append([old])
        store.flush()  # published: now only in Parquet
        request = InferenceRequest(model_id="m", task="extract", texts=["new text"], schema=SCHEMA)
        new = records.inference_row(request, NOW, model=MODEL, output={})
        store.inferences.append([new])
        store.feedback.append(
            [
                records.feedback_row(
                    "id-000001",
                    verdict="incorrect",
                    corrected_output={"entities": {}},
                    notes=None,
                    project_id="p",
                    api_key_id=None,
                )
            ]
        )
        rows, total = store.list_inferences(InferenceFilters())
        listing = {"inferences": [records.to_wire(r) for r in rows], "total": total}
        assert_valid("InferenceListResponse", {**listing, "limit": 100, "offset": 0})
        inputs = {r["id"]: r["input"] for r in listing["inferences"]}
        assert inputs == {"id-000001": "old text", new["id"]: "new text"}
        joined = records.to_wire(store.get_inference("id-000001", None))
        assert_valid("InferenceRecord", joined)
        assert joined["human_verdict"] == "incorrect" and "human_feedback_notes" not in joined
        assert joined["metadata"]["schema"] == SCHEMA
    finally:
        store.close()
