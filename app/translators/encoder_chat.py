"""GLiNER2 models behind the chat-shaped formats (chat, completions, responses, messages).

The text of the last user message (or the prompt) is extracted with the `schema` extra field,
or with a structure made from an OpenAI `response_format` JSON schema, and the result comes
back as JSON text in the assistant's content. The result is turned into the same events a
decoder produces, so every format's own translator (streaming included) renders it.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    ExtractOptions,
    GenerationStarted,
    InferenceRequest,
    InferenceResult,
    TokenDelta,
    quoted,
)
from app.translators.schema import to_gliner2_schema
from app.translators.validation import summarize
from app.wire.encoder_fields import EncoderFields
from app.wire.native import SchemaInput

_SCHEMA: TypeAdapter[Any] = TypeAdapter(SchemaInput)

STRUCTURE = "response"  # the structure name a response_format schema becomes

Shaper = Callable[[dict[str, Any]], Any]


def refuse_decoder_params(names: set[str], model_id: str) -> None:
    if names:
        listed = ", ".join(sorted(names))
        raise ApiException(
            ApiError.invalid(
                f"{listed}: generation parameters do not apply to {quoted(model_id)}, an "
                "extraction (GLiNER2) model. Send the text and a `schema` instead.",
                sorted(names)[0],
                status=400,
            )
        )


def refuse_encoder_fields(fields: EncoderFields, model_id: str) -> None:
    if fields.encoder_fields_set():
        raise ApiException(
            ApiError.invalid(
                f"schema/threshold/include_* apply to extraction models; {quoted(model_id)} is "
                "an LLM.",
                "schema",
                status=400,
            )
        )


def to_extraction(
    model_id: str,
    texts: list[str],
    fields: EncoderFields,
    *,
    json_schema: dict[str, Any] | None,
    batched: bool = False,
    source: Any,
    store: bool,
    project_id: str | None,
    api_key_id: str | None,
    max_texts: int,
) -> tuple[InferenceRequest, Shaper]:
    shaper: Shaper = lambda result: result  # noqa: E731 - identity unless a JSON schema asks
    if json_schema is not None:
        if fields.schema_ is not None:
            raise ApiException(
                ApiError.invalid("send either schema or response_format, not both", "schema", 400)
            )
        schema, shaper = structure_from_json_schema(json_schema)
    elif fields.schema_ is None:
        raise ApiException(
            ApiError.invalid(
                f"{quoted(model_id)} is an extraction (GLiNER2) model: pass the extraction "
                "`schema` as an extra body field (OpenAI SDK: extra_body={'schema': {...}}).",
                "schema",
                status=400,
            )
        )
    else:
        schema = fields.schema_
    if not texts or not all(text.strip() for text in texts):
        raise ApiException(ApiError.invalid("there is no user text to extract from", "messages"))
    if len(texts) > max_texts:
        message = f"{len(texts)} texts; at most {max_texts} per request"
        raise ApiException(ApiError.invalid(message, "prompt", status=400))
    try:
        validated = _SCHEMA.validate_python(schema)
    except ValidationError as exc:
        errors = [
            e | {"loc": ("schema", *e.get("loc", ()))} for e in exc.errors(include_input=False)
        ]
        raise ApiException(ApiError.invalid(summarize(errors), "schema", status=400)) from None
    plain = json_schema is not None  # plain values: the object must validate against the schema
    options = ExtractOptions(
        threshold=0.5 if fields.threshold is None else fields.threshold,
        include_confidence=not plain and fields.include_confidence is not False,
        include_spans=not plain and fields.include_spans is not False,
    )
    request = InferenceRequest(
        model_id=model_id,
        task="extract",
        texts=texts,
        batched=batched,
        schema=to_gliner2_schema(validated),
        options=options,
        store=store,
        project_id=project_id,
        api_key_id=api_key_id,
        source=source,
    )
    return request, shaper


def as_events(
    result: InferenceResult, shaper: Shaper
) -> tuple[AsyncIterator[Any], GenerationTally]:
    """The extraction as a decoder-like event stream: one delta holding the whole JSON."""
    payloads = [shaper(r) for r in result.results]
    text = json.dumps(payloads if result.request.batched else payloads[0], ensure_ascii=False)
    tally = GenerationTally()
    events = [
        GenerationStarted(prompt_tokens=result.input_tokens, prompt=""),
        TokenDelta(0, text, 0),
        ChoiceFinished(0, "stop"),
    ]
    for event in events:
        tally.add(event)

    async def replay() -> AsyncIterator[Any]:
        for event in events[1:]:
            yield event

    return replay(), tally


# ---- response_format: json_schema -> a GLiNER2 structure ------------------------------------


def structure_from_json_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], Shaper]:
    """Object properties become fields: strings (and numbers, booleans) single values, string
    enums choices, arrays list fields. The result is shaped back into an object that
    validates against the schema (missing required values get an empty value of their type)."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise _unsupported("the schema's top level must be an object with properties")
    extra = set(schema) - {"type", "properties", "required", "additionalProperties", "title"}
    if extra:
        raise _unsupported(f"top-level keywords {sorted(extra)} cannot be guaranteed")
    fields, kinds = [], {}
    for name, spec in schema["properties"].items():
        kind, field = _field(name, spec)
        fields.append(field)
        kinds[name] = (kind, spec)
    required = set(schema.get("required", []))

    def shape(result: dict[str, Any]) -> dict[str, Any]:
        instances = result.get(STRUCTURE) or [{}]
        found = instances[0] if isinstance(instances, list) and instances else {}
        shaped = {}
        for name, (kind, spec) in kinds.items():
            value = _coerce(found.get(name), kind, spec)
            if value is not None or name in required:
                shaped[name] = value if value is not None else _empty(kind, spec)
        return shaped

    return {"structures": {STRUCTURE: {"fields": fields}}}, shape


def _unsupported(why: str) -> ApiException:
    return ApiException(
        ApiError.invalid(
            f"response_format json_schema not supported here: {why}", "response_format", 400
        )
    )


# What the mapping honours; a schema asking for more (minItems, pattern, minimum, ...) is
# refused rather than answered with an object that would not validate.
SUPPORTED_KEYWORDS = {"type", "description", "title", "enum", "items", "maxLength", "default"}


def _field(name: str, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    unsupported = set(spec) - SUPPORTED_KEYWORDS
    if unsupported:
        raise _unsupported(f"{name}: keywords {sorted(unsupported)} cannot be guaranteed")
    kind = spec.get("type")
    if isinstance(kind, list):  # ["string", "null"]: nullable; unfound values become null
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            raise _unsupported(f"{name}: type {quoted(kind)}")
        kind = kinds[0]
    field: dict[str, Any] = {"name": name}
    if spec.get("description"):
        field["description"] = spec["description"]
    if kind == "array":
        items = spec.get("items", {})
        if items.get("type") not in (None, "string"):
            raise _unsupported(f"{name}: arrays of {items.get('type')} are not extractable")
        field["dtype"] = "list"
        if items.get("enum"):
            field["choices"] = [str(c) for c in items["enum"]]
        return "array", field
    if kind == "boolean":
        return "boolean", field | {"dtype": "str", "choices": ["true", "false"]}
    if kind in ("string", "number", "integer"):
        field["dtype"] = "str"
        if spec.get("enum"):
            field["choices"] = [str(c) for c in spec["enum"]]
        return kind, field
    raise _unsupported(f"{name}: type {quoted(kind)} (nested objects are not extractable)")


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("text")
    return value if isinstance(value, str) and value else None


def _coerce(value: Any, kind: str, spec: dict[str, Any]) -> Any:
    if kind == "array":
        items = value if isinstance(value, list) else ([] if value is None else [value])
        return [t for t in (_text(v) for v in items) if t is not None]
    text = _text(value)
    if text is None:
        return None
    if kind == "boolean":
        return text.lower() == "true"
    if kind in ("number", "integer"):
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            return None
        if not math.isfinite(number):  # "NaN", "Infinity": not a JSON number
            return None
        return int(number) if kind == "integer" else number
    enum = spec.get("enum")
    if enum and text not in enum:
        return None
    max_length = spec.get("maxLength")
    return text[:max_length] if max_length else text


def _empty(kind: str, spec: dict[str, Any]) -> Any:
    if kind == "array":
        return []
    if isinstance(spec.get("type"), list):
        return None  # nullable
    if spec.get("enum"):
        return spec["enum"][0]
    return {"boolean": False, "number": 0.0, "integer": 0}.get(kind, "")
