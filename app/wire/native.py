"""Pioneer-native wire models (POST /inference). Pydantic only: no engine imports.

Strict types: a number sent as a string, or a list where a string belongs, is a 422 that
names the field, not a silent coercion.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from app.protocol import quoted


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def _json_shape(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, str) else "other"


# Unions are picked by the JSON shape of the value, so an error names the branch the client
# meant instead of listing every alternative; the tags are dropped from error locations.
UNION_TAGS = frozenset({"list", "string", "other"})


def by_shape(list_type: Any, other_type: Any, string_type: Any = None) -> Any:
    """A union of a list form and an object (or string) form, chosen by the value's shape."""
    string_type = string_type or other_type
    return Annotated[
        Annotated[list_type, Tag("list")]
        | Annotated[string_type, Tag("string")]
        | Annotated[other_type, Tag("other")],
        Discriminator(_json_shape),
    ]


def _reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {quoted(name)}")
        seen.add(name)


def _reject_blank(names: list[str], what: str) -> None:
    if any(not name.strip() for name in names):
        raise ValueError(f"{what} names must not be empty")


class EntitySpec(WireModel):
    name: str = Field(min_length=1)
    description: str | None = None


class EntityConfig(WireModel):
    """Value form of the name -> config mapping."""

    description: str | None = None


class ClassificationSpec(WireModel):
    task: str = Field(min_length=1, description="Name of the classification task.")
    labels: by_shape(list[str], dict[str, str]) = Field(  # type: ignore[valid-type]
        description="Candidate labels (at least 2), or label -> description."
    )
    multi_label: bool = False
    cls_threshold: float | None = Field(None, ge=0.0, le=1.0)

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = list(labels)
        if len(names) < 2:
            raise ValueError("a classification needs at least 2 labels")
        _reject_blank(names, "label")
        _reject_duplicates(names, "label")
        return labels


class FieldSpec(WireModel):
    name: str = Field(min_length=1)
    dtype: Literal["str", "list"] = "list"
    choices: list[str] | None = Field(None, min_length=1)
    description: str | None = None


class StructureSpec(WireModel):
    fields: list[FieldSpec] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[FieldSpec]) -> list[FieldSpec]:
        _reject_duplicates([f.name for f in fields], "field")
        return fields


class RelationSpec(WireModel):
    name: str = Field(min_length=1)
    description: str | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)


EntityItem = by_shape(EntitySpec, EntitySpec, str)
EntitiesWire = by_shape(list[EntityItem], dict[str, by_shape(EntityConfig, EntityConfig, str)])
RelationItem = by_shape(RelationSpec, RelationSpec, str)
RelationsWire = by_shape(list[RelationItem], dict[str, str])


class ExtractionSchema(WireModel):
    """The unified dict form. Every key optional; at least one non-empty."""

    entities: EntitiesWire | None = None
    classifications: list[ClassificationSpec] | None = None
    structures: dict[str, StructureSpec] | None = None
    relations: RelationsWire | None = None

    @field_validator("entities")
    @classmethod
    def _entities(cls, entities: EntitiesWire | None) -> EntitiesWire | None:
        if entities is None:
            return None
        names = [e.name if isinstance(e, EntitySpec) else e for e in entities]
        _reject_blank(names, "entity")
        _reject_duplicates(names, "entity label")
        return entities

    @field_validator("relations")
    @classmethod
    def _relations(cls, relations: RelationsWire | None) -> RelationsWire | None:
        if relations is None:
            return None
        names = [r.name if isinstance(r, RelationSpec) else r for r in relations]
        _reject_blank(names, "relation")
        _reject_duplicates(names, "relation")
        return relations

    @field_validator("classifications")
    @classmethod
    def _tasks(cls, tasks: list[ClassificationSpec] | None) -> list[ClassificationSpec] | None:
        if tasks is not None:
            _reject_duplicates([t.task for t in tasks], "classification task")
        return tasks

    @field_validator("structures")
    @classmethod
    def _structures(cls, structures: dict[str, StructureSpec] | None) -> Any:
        if structures is not None:
            _reject_blank(list(structures), "structure")
        return structures

    @model_validator(mode="after")
    def _not_empty(self) -> ExtractionSchema:
        sections = (self.entities, self.classifications, self.structures, self.relations)
        if not any(sections):
            raise ValueError(
                "schema is empty: give at least one of entities, classifications, "
                "structures or relations"
            )
        return self


TextInput = by_shape(list[str], str)
SchemaInput = by_shape(list[str], ExtractionSchema)


class EncoderInferenceRequest(WireModel):
    model_id: str = Field(min_length=1)
    text: TextInput = Field(description="One text, or a list of texts for batch processing.")
    schema_: SchemaInput = Field(
        alias="schema", description="Unified schema dict, or the deprecated flat label list."
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    include_confidence: bool = True
    include_spans: bool = True
    store: bool = True
    project_id: str | None = None

    @field_validator("text")
    @classmethod
    def _text(cls, text: str | list[str]) -> str | list[str]:
        if isinstance(text, str):
            if not text.strip():
                raise ValueError("text must not be empty")
            return text
        if not text:
            raise ValueError("text list must not be empty")
        for index, item in enumerate(text):
            if not item.strip():
                raise ValueError(f"text[{index}] must not be empty")
        return text

    @field_validator("schema_")
    @classmethod
    def _flat_schema(cls, schema: ExtractionSchema | list[str]) -> ExtractionSchema | list[str]:
        if isinstance(schema, list):
            if not schema:
                raise ValueError("schema is empty: give at least one entity label")
            _reject_blank(schema, "entity")
            _reject_duplicates(schema, "entity label")
        return schema


class ChatMessage(WireModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateInferenceRequest(WireModel):
    model_id: str = Field(min_length=1)
    task: Literal["generate"]
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=131072)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: str | list[str] | None = None
    reasoning: dict[str, Any] | None = None
    include_reasoning_trace: bool = False
    store: bool = True
    project_id: str | None = None


class EncoderInferenceResponse(BaseModel):
    type: Literal["encoder"] = "encoder"
    inference_id: str
    result: dict[str, Any] | list[dict[str, Any]]
    model_id: str
    latency_ms: float
    token_usage: int
    model_used: str
