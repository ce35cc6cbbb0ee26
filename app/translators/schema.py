"""Pioneer extraction schema -> GLiNER2's own dict form (what `Schema.from_dict` takes).

Shared by every format: the OpenAI and Anthropic doors take the same `schema` extra field, and
the gliner2 SDK's door (`/gliner-2`) builds one from its task forms.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.wire.extraction_schema import ExtractionSchema


def _options(model: BaseModel, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options by gliner2's names; unset ones (None) keep gliner2's defaults."""
    return model.model_dump(exclude_none=True, exclude=set(without))


def _named(items: Any) -> list[str] | dict[str, Any]:
    """A list of names stays a list; `{name, ...}` objects become gliner2's name -> config."""
    if isinstance(items, dict):
        return {
            name: config if isinstance(config, str) else _options(config)
            for name, config in items.items()
        }
    if all(isinstance(item, str) for item in items):
        return list(items)
    named: dict[str, Any] = {}
    for item in items:
        if isinstance(item, str):
            named[item] = {}
        else:
            named[item.name] = _options(item, without=("name",))
    return named


def _classification(task: Any) -> dict[str, Any]:
    converted = _options(task, without=("threshold",))
    converted["labels"] = task.labels
    if task.threshold is not None:  # the docs' name for it
        converted["cls_threshold"] = task.threshold
    if task.examples is not None:
        converted["examples"] = [tuple(pair) for pair in task.examples]
    return converted


def to_gliner2_schema(schema: ExtractionSchema | list[str]) -> dict[str, Any]:
    """Normalise every accepted input form; the deprecated flat list means entities."""
    if isinstance(schema, list):
        return {"entities": list(schema)}
    converted: dict[str, Any] = {}
    if schema.entities is not None:
        converted["entities"] = _named(schema.entities)
    if schema.classifications is not None:
        converted["classifications"] = [_classification(t) for t in schema.classifications]
    if schema.structures is not None:
        converted["structures"] = {
            name: {
                **_options(structure, without=("fields",)),
                "fields": [{"name": f.name, **_options(f)} for f in structure.fields],
            }
            for name, structure in schema.structures.items()
        }
    if schema.relations is not None:
        converted["relations"] = _named(schema.relations)
    if schema.entity_attributes is not None:
        converted["entity_attributes"] = {
            name: {"labels": group.labels, **_options(group)}
            for name, group in schema.entity_attributes.items()
        }
    return converted
