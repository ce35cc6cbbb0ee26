"""Every option gliner2's own `SchemaInput` accepts, over HTTP, equal to the library in-process;
and its validation rules, as 422s that name the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gliner2.inference.schema_model import SchemaInput

from tests.conftest import TINY_DIR
from tests.helpers import assert_close
from tests.integration.test_extraction import TEXTS, in_process, infer, ok, renamed_relations

EVERY_OPTION: dict[str, Any] = {
    "entities": {
        "person": {"description": "a human", "dtype": "list", "threshold": 0.3},
        "organization": "a company",
        "location": {"dtype": "str"},
    },
    "entity_attributes": {
        "seniority": {"labels": ["senior", "junior"], "applies_to": ["person"]},
        "tags": {
            "labels": ["public", "private"],
            "multi_label": True,
            "threshold": 0.4,
            "qualify_labels": True,
        },
    },
    "classifications": [
        {
            "task": "sentiment",
            "labels": ["positive", "negative", "neutral"],
            "cls_threshold": 0.4,
            "class_act": "softmax",
            "prompt": "overall tone",
            "examples": [["great!", "positive"], ["awful", "negative"]],
        },
        {
            "task": "topics",
            "labels": {"tech": "technology", "business": "money", "travel": "trips"},
            "multi_label": True,
            "cls_threshold": 0.3,
            "top_k": 2,
            "class_act": "sigmoid",
        },
    ],
    "structures": {
        "deal": {
            "fields": [
                {"name": "buyer", "dtype": "str", "threshold": 0.2},
                {"name": "price", "description": "amount"},
                {"name": "kind", "choices": ["merger", "acquisition"], "dtype": "str"},
            ]
        },
        "role": {
            "mode": "natural",
            "anchor": "who",
            "occurrence_policy": "all",
            "fields": [
                {"name": "who", "dtype": "str", "cardinality": "required_one", "exclusive": True},
                {"name": "org", "cardinality": "zero_or_more"},
            ],
        },
        "people": {
            "mode": "anchorless",
            "fields": [
                {"name": "name", "cardinality": "one_or_more"},
                {"name": "city", "cardinality": "optional_one"},
            ],
        },
    },
    "relations": {
        "works_for": {"description": "employment", "threshold": 0.3},
        "located_in": "place",
    },
}
DESCRIBED = {"works_for: employment": "works_for", "located_in: place": "located_in"}


def test_every_schema_input_option_matches_the_library(client: httpx.Client) -> None:
    SchemaInput.model_validate(EVERY_OPTION)  # the library itself accepts this schema
    body = ok(infer(client, text=TEXTS, schema=EVERY_OPTION))
    expected = [
        renamed_relations(result, DESCRIBED)
        for result in in_process(str(TINY_DIR), TEXTS, EVERY_OPTION)
    ]
    assert_close(body["result"], expected)
    first = body["result"][0]
    assert {"entities", "sentiment", "topics", "deal", "role", "people"} <= set(first)
    assert isinstance(first["entities"]["location"], (dict, type(None)))  # dtype str: one span


def test_the_docs_forms_threshold_in_a_classification_and_top_k(client: httpx.Client) -> None:
    docs_form = {
        "classifications": [
            {"task": "safety", "labels": ["safe", "unsafe"], "threshold": 0.4},
            {"task": "topic", "labels": ["a", "b", "c"], "multi_label": True, "top_k": 1},
        ]
    }
    library_form = {
        "classifications": [
            {"task": "safety", "labels": ["safe", "unsafe"], "cls_threshold": 0.4},
            {"task": "topic", "labels": ["a", "b", "c"], "multi_label": True, "top_k": 1},
        ]
    }
    body = ok(infer(client, text=TEXTS, schema=docs_form))
    assert body["result"] == ok(infer(client, text=TEXTS, schema=library_form))["result"]
    for result in body["result"]:
        assert len(result["topic"]) <= 1


ONE_FIELD = [{"name": "f"}]
REFUSED = [
    ({"entities": []}, "entities"),
    ({"entities": ["a", "a"]}, "entities"),
    ({"entities": {"a": {"dtype": "set"}}}, "dtype"),
    ({"entities": {"a": {"threshold": 1.5}}}, "threshold"),
    ({"entities": {"a": {"colour": "red"}}}, "colour"),
    ({"classifications": [{"task": "t", "labels": ["x"]}]}, "labels"),
    ({"classifications": [{"task": "t", "labels": ["x", "y"], "top_k": 0}]}, "top_k"),
    ({"classifications": [{"task": "t", "labels": ["x", "y"], "class_act": "relu"}]}, "class_act"),
    ({"classifications": [{"task": "t", "labels": ["x", "y"], "examples": [["a"]]}]}, "examples"),
    ({"classifications": [{"task": "t", "labels": ["x", "y"], "toppk": 1}]}, "toppk"),
    (
        {"structures": {"s": {"fields": ONE_FIELD, "mode": "natural", "anchor": "g"}}},
        "anchor",
    ),
    ({"structures": {"s": {"fields": ONE_FIELD, "mode": "latent", "anchor": "f"}}}, "anchor"),
    ({"structures": {"s": {"fields": [{"name": "f", "cardinality": "many"}]}}}, "cardinality"),
    ({"structures": {"s": {"fields": []}}}, "fields"),
    ({"relations": {"r": {"threshold": -0.1}}}, "threshold"),
    ({"relations": ["r"], "entity_attributes": {"g": {"labels": ["x"]}}}, "entity_attributes"),
    ({"entities": ["a"], "entity_attributes": {"g": {"labels": []}}}, "labels"),
]


@pytest.mark.parametrize("schema,named", REFUSED, ids=[named for _, named in REFUSED])
def test_the_library_rules_refuse_with_a_422_naming_the_field(
    client: httpx.Client, schema: dict[str, Any], named: str
) -> None:
    response = infer(client, text=TEXTS[0], schema=schema)
    assert response.status_code == 422, response.text
    assert named in response.text
