"""The gliner2 SDK's door (POST /gliner-2): its task forms <-> the canonical request.

Each task's `schema` becomes the unified extraction schema, then runs through the same
validation (app/wire/extraction_schema.py) and translation as POST /inference, so one request
answers the same through either door. The answer is the library's own result shape under
`result`, which is what `GLiNER2API` parses: `{"entities": ...}` for extract_entities,
`{"classification": ...}` for classify_text (the client renames it to its task), and the
schema's sections otherwise.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.protocol import ApiError, ApiException, ExtractOptions, InferenceRequest, InferenceResult
from app.translators.schema import to_gliner2_schema
from app.wire.extraction_schema import ExtractionSchema
from app.wire.gliner2_sdk import Gliner2Request

# classify_text sends labels without the task's name: the task is run under this one, the
# key the client reads back.
CLASSIFY_TASK = "classification"


class SchemaFormError(ValueError):
    """A task's schema in a form no documented shape matches: (location, message)."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def parse_field_spec(spec: Any) -> Any:
    """The SDK's field strings, `name::dtype::description` or `name::[a|b]::str`, as gliner2's
    own `_parse_field_spec` reads them; a dict is already a field and is validated as one."""
    if not isinstance(spec, str):
        return spec
    name, *parts = spec.split("::")
    field: dict[str, Any] = {"name": name}
    for part in parts:
        if part in ("str", "list"):
            field["dtype"] = part
        elif part.startswith("[") and part.endswith("]"):
            field["choices"] = [choice.strip() for choice in part[1:-1].split("|")]
            field.setdefault("dtype", "str")  # choices pick one unless the dtype says list
        else:
            field["description"] = part
    return field


def _structures(structures: Any, loc: tuple[Any, ...]) -> Any:
    """{name: [field specs]} (the SDK's form) or {name: {fields: [...]}} (the unified one)."""
    if not isinstance(structures, dict):
        raise SchemaFormError(loc, "structures must be an object of name -> field list")
    return {
        name: {"fields": [parse_field_spec(spec) for spec in spec_list]}
        if isinstance(spec_list, list)
        else spec_list
        for name, spec_list in structures.items()
    }


def _classifications(tasks: Any) -> Any:
    """{task: labels | {labels, options}} (the SDK's form) or the unified list."""
    if not isinstance(tasks, dict):
        return tasks
    return [
        {"task": name, **config} if isinstance(config, dict) else {"task": name, "labels": config}
        for name, config in tasks.items()
    ]


def _with_defaults(named: Any, defaults: dict[str, Any]) -> Any:
    """Schema-wide options (entity_dtype, entity_threshold, relation_threshold) as each
    type's own, where the type does not set it: how the SDK's local SchemaAPI applies them."""
    if not defaults:
        return named
    if isinstance(named, str):
        named = [named]
    if isinstance(named, list):
        named = {name: {} for name in named if isinstance(name, str)}
    if not isinstance(named, dict):
        return named
    return {
        name: {**defaults, **({"description": config} if isinstance(config, str) else config)}
        if isinstance(config, str | dict)
        else config
        for name, config in named.items()
    }


def _sdk_schema(schema: Any) -> dict[str, Any]:
    """SchemaAPI.build(): the unified dict plus entity_dtype, entity_threshold and
    relation_threshold, and its own classification and structure forms."""
    if not isinstance(schema, dict):
        raise SchemaFormError((), "schema must be an object for task 'schema'")
    unified = dict(schema)
    entity_defaults = {}
    if (dtype := unified.pop("entity_dtype", "list")) != "list":
        entity_defaults["dtype"] = dtype
    if (threshold := unified.pop("entity_threshold", None)) is not None:
        entity_defaults["threshold"] = threshold
    relation_threshold = unified.pop("relation_threshold", None)
    if "entities" in unified:
        unified["entities"] = _with_defaults(unified["entities"], entity_defaults)
    if "relations" in unified and relation_threshold is not None:
        unified["relations"] = _with_defaults(
            unified["relations"], {"threshold": relation_threshold}
        )
    if "classifications" in unified:
        unified["classifications"] = _classifications(unified["classifications"])
    if "structures" in unified:
        unified["structures"] = _structures(unified["structures"], ("structures",))
    return unified


def unified_schema(task: str, schema: Any) -> dict[str, Any]:
    """The task's schema in the unified form POST /inference takes (not yet validated)."""
    if task == "extract_entities":
        return {"entities": [schema] if isinstance(schema, str) else schema}
    if task == "classify_text":
        if not isinstance(schema, dict) or "categories" not in schema:
            raise SchemaFormError((), "classify_text takes {'categories': [labels]}")
        options = {key: value for key, value in schema.items() if key != "categories"}
        return {
            "classifications": [{"task": CLASSIFY_TASK, "labels": schema["categories"], **options}]
        }
    if task == "extract_json":
        return {"structures": _structures(schema, ())}
    return _sdk_schema(schema)


def to_internal(
    wire: Gliner2Request,
    *,
    model_id: str,
    project_id: str | None,
    api_key_id: str | None,
    max_texts: int,
) -> InferenceRequest:
    """Raises pydantic's ValidationError (locations under `schema`) for a schema the
    unified rules refuse, ApiException for other client errors."""
    try:
        unified = unified_schema(wire.task, wire.schema_)
    except SchemaFormError as exc:
        raise ApiException(ApiError.invalid(f"schema: {exc}", "schema")) from None
    schema = ExtractionSchema.model_validate(unified)
    texts = [wire.text] if isinstance(wire.text, str) else list(wire.text)
    if len(texts) > max_texts:
        message = f"text has {len(texts)} items; at most {max_texts} per request"
        raise ApiException(ApiError.invalid(message, "text"))
    full = not wire.format_results  # the unshaped payload: every confidence and span
    return InferenceRequest(
        model_id=model_id,
        task="extract",
        texts=texts,
        batched=isinstance(wire.text, list),
        schema=to_gliner2_schema(schema),
        options=ExtractOptions(
            threshold=wire.threshold,
            include_confidence=wire.include_confidence or full,
            include_spans=wire.include_spans or full,
        ),
        store=wire.store,
        project_id=project_id,
        api_key_id=api_key_id,
        source="gliner2",
    )


def to_response(result: InferenceResult) -> dict[str, Any]:
    request = result.request
    return {
        "result": result.results if request.batched else result.results[0],
        "inference_id": request.inference_id,
        "model_id": request.model_id,
        "model_used": result.model.model_key,
        "latency_ms": round(result.latency_ms, 3),
        "token_usage": result.input_tokens,
    }


def schema_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The unified schema's errors, located under the request's `schema`."""
    return [
        {**error, "loc": ("schema", *error["loc"])}
        for error in exc.errors(include_input=False, include_url=False)
    ]
