"""Pioneer extraction schema -> GLiNER2's own dict form (what `Schema.from_dict` takes).

Shared by every format: the OpenAI and Anthropic doors take the same `schema` extra field.
"""

from __future__ import annotations

from typing import Any

from app.wire.native import EntitySpec, ExtractionSchema, RelationSpec


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _entities(entities: Any) -> list[str] | dict[str, Any]:
    if isinstance(entities, dict):
        return {
            name: config if isinstance(config, str) else _drop_none(config.model_dump())
            for name, config in entities.items()
        }
    if all(isinstance(e, str) for e in entities):
        return list(entities)
    converted: dict[str, Any] = {}
    for item in entities:
        if isinstance(item, EntitySpec):
            converted[item.name] = _drop_none({"description": item.description})
        else:
            converted[item] = {}
    return converted


def _relations(relations: Any) -> list[str] | dict[str, Any]:
    if isinstance(relations, dict):
        return dict(relations)
    if all(isinstance(r, str) for r in relations):
        return list(relations)
    converted: dict[str, Any] = {}
    for item in relations:
        if isinstance(item, RelationSpec):
            converted[item.name] = _drop_none(
                {"description": item.description, "threshold": item.threshold}
            )
        else:
            converted[item] = {}
    return converted


def to_gliner2_schema(schema: ExtractionSchema | list[str]) -> dict[str, Any]:
    """Normalise every accepted input form; the deprecated flat list means entities."""
    if isinstance(schema, list):
        return {"entities": list(schema)}
    converted: dict[str, Any] = {}
    if schema.entities:
        converted["entities"] = _entities(schema.entities)
    if schema.classifications:
        converted["classifications"] = [
            _drop_none(task.model_dump()) for task in schema.classifications
        ]
    if schema.structures:
        converted["structures"] = {
            name: {"fields": [_drop_none(f.model_dump()) for f in structure.fields]}
            for name, structure in schema.structures.items()
        }
    if schema.relations:
        converted["relations"] = _relations(schema.relations)
    return converted
