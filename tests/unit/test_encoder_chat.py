"""response_format JSON schema -> GLiNER2 structure, and back to an object that validates."""

from __future__ import annotations

import json

import jsonschema
import pytest

from app.protocol import ApiException
from app.translators.encoder_chat import structure_from_json_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "person": {"type": "string", "description": "who"},
        "score": {"type": "integer"},
        "ratio": {"type": ["number", "null"]},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        "mood": {"type": "string", "enum": ["happy", "sad"]},
        "ok": {"type": "boolean"},
    },
    "required": ["person", "score", "ratio", "tags", "mood", "ok"],
    "additionalProperties": False,
}


def test_fields_follow_the_schema() -> None:
    gliner_schema, _ = structure_from_json_schema(SCHEMA)
    fields = {f["name"]: f for f in gliner_schema["structures"]["response"]["fields"]}
    assert fields["person"] == {"name": "person", "description": "who", "dtype": "str"}
    assert fields["tags"] == {"name": "tags", "dtype": "list", "choices": ["a", "b"]}
    assert fields["mood"]["choices"] == ["happy", "sad"]
    assert fields["ok"]["choices"] == ["true", "false"]


@pytest.mark.parametrize(
    "found",
    [
        {},
        {"person": {"text": "Ann"}, "score": {"text": "Infinity"}, "ratio": {"text": "NaN"}},
        {"score": {"text": "1,024"}, "ratio": {"text": "0.5"}, "tags": [{"text": "a"}, "b"]},
        {"mood": {"text": "angry"}, "ok": {"text": "true"}},
    ],
)
def test_shaped_output_always_validates(found: dict) -> None:
    _, shape = structure_from_json_schema(SCHEMA)
    payload = shape({"response": [found]})
    jsonschema.validate(payload, SCHEMA)
    json.loads(json.dumps(payload, allow_nan=False))  # strict JSON: no NaN or Infinity


def test_values_are_parsed_back() -> None:
    _, shape = structure_from_json_schema(SCHEMA)
    found = {"score": {"text": "1,024"}, "ratio": {"text": "0.5"}, "ok": {"text": "true"}}
    payload = shape({"response": [found]})
    assert payload["score"] == 1024 and payload["ratio"] == 0.5 and payload["ok"] is True
    assert shape({"response": [{}]})["ratio"] is None  # nullable and not found


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "properties": {"x": {"type": "object", "properties": {}}}},
        {"type": "object", "properties": {"x": {"type": "array", "minItems": 1}}},
        {"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}]}}},
        {"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}},
        {"type": "object", "properties": {"x": {"type": "string"}}, "minProperties": 1},
    ],
)
def test_what_cannot_be_guaranteed_is_refused(bad: dict) -> None:
    with pytest.raises(ApiException) as refused:
        structure_from_json_schema(bad)
    assert refused.value.error.status == 400
