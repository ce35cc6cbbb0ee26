"""The extraction `schema` every door takes. Pydantic only: no engine imports.

Accepts everything gliner2's own `SchemaInput` accepts (gliner2/inference/schema_model.py), with
its validation rules, plus the forms Pioneer's docs show: entities and relations as lists of
`{name, ...}` objects, and `threshold` inside a classification (the same as `cls_threshold`).
Unknown keys are refused, so a misspelt option is a 422 that names it.

Strict types: a number sent as a string, or a list where a string belongs, is a 422 that names
the field, not a silent coercion.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
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


def reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {quoted(name)}")
        seen.add(name)


def reject_blank(names: list[str], what: str) -> None:
    if any(not name.strip() for name in names):
        raise ValueError(f"{what} names must not be empty")


Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
Dtype = Literal["str", "list"]


class EntityConfig(WireModel):
    """One entity type's options (gliner2's `EntityInput`)."""

    description: str | None = None
    dtype: Dtype | None = Field(None, description="'list': every mention; 'str': the best one.")
    threshold: Threshold | None = None


class EntitySpec(EntityConfig):
    """The docs' list-of-objects form: `{"name": ..., <EntityConfig options>}`."""

    name: str = Field(min_length=1)


class ClassificationSpec(WireModel):
    task: str = Field(min_length=1, description="Name of the classification task.")
    labels: by_shape(list[str], dict[str, str]) = Field(  # type: ignore[valid-type]
        description="Candidate labels (at least 2), or label -> description."
    )
    multi_label: bool = False
    cls_threshold: Threshold | None = Field(None, description="Multi-label selection cutoff.")
    threshold: Threshold | None = Field(None, description="The docs' name for cls_threshold.")
    top_k: int | None = Field(None, ge=1, description="Most labels a multi-label task returns.")
    class_act: Literal["auto", "sigmoid", "softmax"] | None = None
    prompt: str | None = Field(None, description="Instruction appended to the task name.")
    examples: list[Annotated[list[str], Field(min_length=2, max_length=2)]] | None = Field(
        None, description="Few-shot [input, label] pairs rendered into the prompt."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = list(labels)
        if len(names) < 2:
            raise ValueError("a classification needs at least 2 labels")
        reject_blank(names, "label")
        reject_duplicates(names, "label")
        return labels

    @model_validator(mode="after")
    def _one_threshold(self) -> ClassificationSpec:
        if self.threshold is not None and self.cls_threshold is not None:
            raise ValueError("give threshold or cls_threshold, not both (they are one setting)")
        return self


Cardinality = Literal["optional_one", "required_one", "zero_or_more", "one_or_more"]


class FieldSpec(WireModel):
    name: str = Field(min_length=1)
    dtype: Dtype = "list"
    choices: list[str] | None = Field(None, min_length=1)
    description: str | None = None
    threshold: Threshold | None = None
    cardinality: Cardinality | None = Field(None, description="Used when the structure has a mode.")
    exclusive: bool | None = Field(
        None, description="A mention bound here cannot bind elsewhere (default false)."
    )


class StructureSpec(WireModel):
    fields: list[FieldSpec] = Field(min_length=1)
    mode: Literal["natural", "latent", "anchorless"] | None = Field(
        None, description="Record formation mode."
    )
    anchor: str | None = Field(None, description="Anchor field (mode natural; default: first).")
    occurrence_policy: Literal["all", "first", "error_on_ambiguous", "latent_all"] | None = None

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[FieldSpec]) -> list[FieldSpec]:
        reject_duplicates([f.name for f in fields], "field")
        return fields

    @model_validator(mode="after")
    def _anchor(self) -> StructureSpec:
        # gliner2's rule: natural mode anchors on a declared field, other modes name none.
        if self.mode == "natural" and self.anchor is not None:
            if self.anchor not in {f.name for f in self.fields}:
                raise ValueError(f"anchor {quoted(self.anchor)} is not a declared field")
        elif self.mode is not None and self.anchor is not None:
            raise ValueError(f"structure mode {quoted(self.mode)} must not set anchor")
        return self


class RelationConfig(WireModel):
    """One relation type's options (gliner2's `RelationInput`)."""

    description: str | None = None
    threshold: Threshold | None = None


class RelationSpec(RelationConfig):
    name: str = Field(min_length=1)


class AttributeGroupSpec(WireModel):
    """Attributes decoded on extracted entity spans (gliner2's `AttributeGroupInput`)."""

    labels: list[str] = Field(min_length=1)
    multi_label: bool = False
    threshold: Threshold = 0.5
    applies_to: list[str] | None = Field(None, description="Entity types it applies to.")
    qualify_labels: bool = Field(False, description="Prefix values with the group's name.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        reject_blank(labels, "attribute label")
        reject_duplicates(labels, "attribute label")
        return labels


EntityItem = by_shape(EntitySpec, EntitySpec, str)
EntitiesWire = by_shape(list[EntityItem], dict[str, by_shape(EntityConfig, EntityConfig, str)])
RelationItem = by_shape(RelationSpec, RelationSpec, str)
RelationsWire = by_shape(
    list[RelationItem], dict[str, by_shape(RelationConfig, RelationConfig, str)]
)


def _names(items: Any, spec: type) -> list[str]:
    return [item.name if isinstance(item, spec) else item for item in items]


class ExtractionSchema(WireModel):
    """The unified dict form. Every section optional; at least one given."""

    entities: EntitiesWire | None = None
    classifications: list[ClassificationSpec] | None = None
    structures: dict[str, StructureSpec] | None = None
    relations: RelationsWire | None = None
    entity_attributes: dict[str, AttributeGroupSpec] | None = Field(
        None, description="Attribute groups decoded on each extracted entity (needs entities)."
    )

    @field_validator("entities", "relations")
    @classmethod
    def _named_types(cls, named: Any, info: ValidationInfo) -> Any:
        if named is not None:
            kind = "entity" if info.field_name == "entities" else "relation"
            names = _names(named, EntitySpec if kind == "entity" else RelationSpec)
            if not names:
                raise ValueError(f"{info.field_name} must not be empty (leave the key out instead)")
            reject_blank(names, kind)
            reject_duplicates(names, "entity label" if kind == "entity" else kind)
        return named

    @field_validator("classifications")
    @classmethod
    def _tasks(cls, tasks: list[ClassificationSpec] | None) -> list[ClassificationSpec] | None:
        if tasks is not None:
            if not tasks:
                raise ValueError("classifications must not be empty (leave the key out instead)")
            reject_duplicates([t.task for t in tasks], "classification task")
        return tasks

    @field_validator("structures")
    @classmethod
    def _structures(cls, structures: dict[str, StructureSpec] | None) -> Any:
        if structures is not None:
            if not structures:
                raise ValueError("structures must not be empty (leave the key out instead)")
            reject_blank(list(structures), "structure")
        return structures

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, values: Any) -> Any:
        sections = ("entities", "classifications", "structures", "relations")
        if isinstance(values, dict) and all(values.get(key) is None for key in sections):
            raise ValueError(
                "schema is empty: give at least one of entities, classifications, "
                "structures or relations"
            )
        return values

    @model_validator(mode="after")
    def _attributes_need_entities(self) -> ExtractionSchema:
        if self.entity_attributes is not None and self.entities is None:
            raise ValueError("entity_attributes requires entities")
        return self
