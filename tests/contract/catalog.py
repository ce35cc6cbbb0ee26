"""The catalog entry of GET /base-models as JSON Schema. The OpenAPI document has no schema
for it, so this one is written from models.mdx ("Each entry in the response includes the model
ID, its display label, context length, per-1M-token rates (input_price_per_million,
output_price_per_million, cache_read_price_per_million, cache_write_price_per_million), and
boolean flags for supports_training and supports_inference"; the listing is `{models: [...]}`),
errors.mdx (`supports_on_demand_inference`) and the issue (`context_window`, lifecycle)."""

from __future__ import annotations

from typing import Any

import jsonschema

PRICE = {"type": "number", "minimum": 0}
FLAG = {"type": "boolean"}
BASE_MODEL: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "display_name",
        "task_type",
        "input_price_per_million",
        "output_price_per_million",
        "cache_read_price_per_million",
        "cache_write_price_per_million",
        "supports_training",
        "supports_inference",
        "supports_on_demand_inference",
        "lifecycle",
    ],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "display_name": {"type": "string", "minLength": 1},
        "task_type": {"enum": ["encoder", "decoder", "embedding"]},
        "context_window": {"type": "integer", "minimum": 1},
        "context_length": {"type": "integer", "minimum": 1},
        "dimensions": {"type": "integer", "minimum": 1},  # embedding models
        "supports_reasoning": FLAG,  # decoders
        "supports_tool_choice_auto": FLAG,
        "reasoning_parser": {"type": "string"},
        "tool_parser": {"type": "string"},
        "input_price_per_million": PRICE,
        "output_price_per_million": PRICE,
        "cache_read_price_per_million": PRICE,
        "cache_write_price_per_million": PRICE,
        "supports_training": FLAG,
        "supports_inference": FLAG,
        "supports_on_demand_inference": FLAG,
        "lifecycle": {"enum": ["ga", "preview", "deprecated"]},
        "created_at": {"type": "string"},
        "status": {"type": "string"},
        "status_message": {"type": "string"},
    },
}
BASE_MODELS_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["models"],
    "properties": {"models": {"type": "array", "items": BASE_MODEL}},
}


def assert_valid_card(card: dict[str, Any]) -> None:
    jsonschema.validate(card, BASE_MODEL)
    if "context_window" in card:  # the two names are one value
        assert card["context_length"] == card["context_window"], card


def assert_valid_base_models(body: dict[str, Any]) -> None:
    jsonschema.validate(body, BASE_MODELS_RESPONSE)
    for card in body["models"]:
        assert_valid_card(card)
