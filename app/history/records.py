"""How an inference becomes rows, and how a stored row reads back. No I/O here, and no
pyarrow: the ingress builds rows with this module (the Parquet types are in `schemas`).

JSON-valued fields (output, metadata, corrected_output) are stored as JSON text so the
Parquet schema stays fixed; DuckDB's json functions read them in ad-hoc SQL. `input` is stored
as the contract's string (InferenceRecord.input): the text itself for one text, JSON text for a
batch or a conversation; `metadata.input_kind` says which. Rows written before that (input as
a JSON object of text, schema and options) are converted when read (`record_to_wire`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from app.protocol import (
    LONE_SURROGATE,
    ApiError,
    InferenceRequest,
    ResolvedModel,
    SamplingOptions,
)

# A bill's status when the inference ran but its history row could not be kept (the caller
# got a 503 instead of the result); "success" and "failed" are the others.
UNRECORDED = "unrecorded"

JSON_FIELDS = {"output", "metadata", "corrected_output", "human_corrected_output"}

# Schema sections -> task names (docs: extract_entities, classify_text, extract_json, ...).
# A combined schema joins them with "+" in this order, e.g. "extract_entities+classify_text".
TASK_BY_SECTION = {
    "entities": "extract_entities",
    "classifications": "classify_text",
    "structures": "extract_json",
    "relations": "extract_relations",
}

# Names the `task` filter accepts -> the task name records carry. history.mdx documents
# `ner`, `classification`, `generate`; the OpenAPI `extract_entities`, `classify_text`,
# `extract_json`, `generate`; the schema's own section names are accepted too. A name not
# listed here is matched as it is (so an unknown name simply matches nothing).
TASK_ALIASES = {
    **{task: task for task in TASK_BY_SECTION.values()},
    **{section: task for section, task in TASK_BY_SECTION.items()},
    "generate": "generate",
    "generation": "generate",
    "embed": "embed",
    "embedding": "embed",
    "embeddings": "embed",
    "ner": "extract_entities",
    "entity": "extract_entities",
    "classification": "classify_text",
    "classify": "classify_text",
    "json": "extract_json",
    "structure": "extract_json",
    "relation": "extract_relations",
    "relation_extraction": "extract_relations",
}

# The contract's enums: a record shows no other value in these fields.
SOURCES = ("api", "ui")
ERROR_TYPE_VALUES = (
    "validation",
    "timeout",
    "model_not_ready",
    "model_not_found",
    "model_not_supported",
    "capacity_exhausted",
    "internal",
)
# Wire fields the contract types loosely ({}), where null is a value worth showing: a failed
# inference has no output. Every other field is left out when it holds nothing, because a
# "string" or "integer" property does not accept null.
NULLABLE_WIRE_FIELDS = {"output"}

# ApiError codes -> the contract's InferenceRecord.error_type
ERROR_TYPES = {
    "invalid_request": "validation",
    "model_not_found": "model_not_found",
    "model_unavailable": "model_not_ready",
    "model_warming": "model_not_ready",
    "starting": "model_not_ready",
    "backend_unavailable": "capacity_exhausted",
    "overloaded": "capacity_exhausted",
    "timeout": "timeout",
    "not_implemented": "model_not_supported",
    "context_length_exceeded": "validation",
    "client_disconnected": "timeout",
}


def without_lone_surrogates(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every lone surrogate replaced by U+FFFD: valid UTF-8, and JSON text
    fields stay valid JSON. (The doors refuse such text; this keeps a record regardless.)"""
    return {
        key: LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value
        for key, value in row.items()
    }


def now() -> datetime:
    return datetime.now(UTC)


def task_filter_parts(value: str) -> list[str]:
    """The task names a `task` filter value asks for: `ner` -> [extract_entities]; a combined
    value (`ner+classification`) -> each part, in the order given."""
    return [TASK_ALIASES.get(part.strip().lower(), part.strip()) for part in value.split("+")]


def task_name(request: InferenceRequest) -> str:
    if request.task in ("generate", "embed"):
        return request.task
    schema = request.schema or {}
    return "+".join(task for section, task in TASK_BY_SECTION.items() if schema.get(section))


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def cost_usd(
    model: ResolvedModel | None, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0
) -> float:
    """`input_tokens` are the uncached ones; cached reads bill at the model's cache price."""
    if model is None:
        return 0.0
    return (
        input_tokens * model.input_price_per_million
        + cache_read_tokens * model.cache_read_price_per_million
        + output_tokens * model.output_price_per_million
    ) / 1_000_000


def _sampling(request: InferenceRequest) -> dict[str, Any]:
    """The sampling settings that differ from the defaults (0.0 is a setting, not a default)."""
    defaults = asdict(SamplingOptions())
    return {k: v for k, v in asdict(request.sampling).items() if v != defaults.get(k)}


def request_input(request: InferenceRequest) -> tuple[str, dict[str, Any]]:
    """What ran, as the contract's `input` string plus what belongs in `metadata`.

    `input` is the text itself for one text; JSON text for a batch (a list of strings) or a
    conversation (the messages, `[{role, content}, ...]`); a completion prompt is one string,
    so it is the prompt itself. The schema and the options (or the sampling settings) go to
    metadata, with `input_kind` (text | texts | messages | prompt, and for embeddings tokens |
    token_lists: token ids as JSON text) saying how to read input.
    """
    if request.task == "embed":  # texts as for extraction; token ids as their JSON text
        if request.token_ids is not None:
            if request.batched:
                return _dumps(request.token_ids) or "[]", {"input_kind": "token_lists"}
            return _dumps(request.token_ids[0]) or "[]", {"input_kind": "tokens"}
        if request.batched:
            return _dumps(request.texts) or "[]", {"input_kind": "texts"}
        return (request.texts[0] if request.texts else ""), {"input_kind": "text"}
    if request.task == "generate":
        details: dict[str, Any] = {"sampling": _sampling(request)}
        if request.messages is not None:
            if request.prompt is not None:
                details["prompt"] = request.prompt
            return _dumps(request.messages) or "[]", {"input_kind": "messages", **details}
        return request.prompt or "", {"input_kind": "prompt", **details}
    options = {
        "schema": request.schema,
        "threshold": request.options.threshold,
        "include_confidence": request.options.include_confidence,
        "include_spans": request.options.include_spans,
    }
    if request.batched:
        return _dumps(request.texts) or "[]", {"input_kind": "texts", **options}
    return (request.texts[0] if request.texts else ""), {"input_kind": "text", **options}


def inference_row(
    request: InferenceRequest,
    created_at: datetime,
    *,
    model: ResolvedModel | None,
    output: Any = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    error: ApiError | None = None,
    latency_ms: float = 0.0,
) -> dict[str, Any]:
    """The history row. Only called when `store` is true: it holds the payload.
    `input_tokens` are the uncached ones (prompt-caching.mdx: the four counts add up)."""
    text, details = request_input(request)
    return {
        "id": request.inference_id,
        "user_id": request.api_key_id or "anonymous",
        "api_key_id": request.api_key_id,
        "model_id": request.model_id,
        "model_name": model.display_name if model else None,
        "task": task_name(request),
        "input": text,
        "output": _dumps(output),
        "latency_ms": round(latency_ms),
        "tokens": input_tokens + output_tokens + cache_read_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": 0,
        "source": "api",
        "format": request.source,
        "status": "failed" if error else "success",
        "error_type": ERROR_TYPES.get(error.code, "internal") if error else None,
        "error_message": error.message if error else None,
        "created_at": created_at,
        "project_id": request.project_id,
        "training_job_id": model.training_job_id if model else None,
        "provider": "self-hosted",
        "base_model": model.model_id if model else None,
        "metadata": _dumps(
            {
                "texts": len(request.texts) or len(request.token_ids or ()),
                "stream": request.stream,
                "model_used": model.model_key if model else None,
                "format": request.source,
                **details,
            }
        ),
    }


def billing_row(
    request: InferenceRequest,
    created_at: datetime,
    *,
    model: ResolvedModel | None,
    input_tokens: int,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    failed: bool = False,
) -> dict[str, Any]:
    """The billing event: counts and ids only, never the payload, so `store: false` keeps it."""
    return {
        "id": request.inference_id,
        "project_id": request.project_id,
        "api_key_id": request.api_key_id,
        "model_id": request.model_id,
        "base_model": model.model_id if model else None,
        "training_job_id": model.training_job_id if model else None,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": 0,
        "cost_usd": cost_usd(model, input_tokens, output_tokens, cache_read_tokens),
        "status": "failed" if failed else "success",
        "created_at": created_at,
    }


def feedback_row(
    inference_id: str,
    *,
    verdict: str,
    corrected_output: Any,
    notes: str | None,
    project_id: str | None,
    api_key_id: str | None,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "inference_id": inference_id,
        "project_id": project_id,
        "api_key_id": api_key_id,
        "verdict": verdict,
        "corrected_output": _dumps(corrected_output),
        "notes": notes,
        "created_at": now(),
    }


def to_wire(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API returns it: JSON fields parsed, times as ISO 8601 UTC. An
    inference row (it has `input`) is shaped as the contract's InferenceRecord."""
    if "input" in row:
        return record_to_wire(row)
    return _parsed(row)


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    wire = {}
    for key, value in row.items():
        if key in JSON_FIELDS and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        wire[key] = value
    return wire


def record_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    """An inference row (feedback columns joined or not) as an InferenceRecord: `input` a
    string, `metadata` an object, enums within the contract's values, and no null where the
    contract types a field (those fields are left out instead)."""
    wire = _parsed(row)
    metadata = wire.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    if "input_kind" not in metadata:  # written before input was the contract's string
        text, details = legacy_input(wire.get("input"))
        wire["input"] = text
        metadata = {**details, **metadata}
    if wire.get("format") is not None:
        metadata.setdefault("format", wire["format"])
    if wire.get("source") not in SOURCES:
        # Every recorded inference came in through the API; a door name belongs in `format`.
        if wire.get("source") is not None:
            metadata.setdefault("format", wire["source"])
        wire["source"] = "api"
    if wire.get("error_type") is not None and wire["error_type"] not in ERROR_TYPE_VALUES:
        metadata.setdefault("error_code", wire["error_type"])
        wire["error_type"] = "internal"
    if wire.get("latency_ms") is not None:
        wire["latency_ms"] = round(wire["latency_ms"])
    wire["input"] = wire.get("input") or ""
    wire["metadata"] = metadata
    return {
        key: value
        for key, value in wire.items()
        if value is not None or key in NULLABLE_WIRE_FIELDS
    }


def legacy_input(stored: Any) -> tuple[str, dict[str, Any]]:
    """An `input` stored as a JSON object (`{text, schema, threshold, include_*}` or
    `{messages | prompt, sampling}`) as the contract's string plus its metadata part."""
    if not isinstance(stored, str):
        return ("" if stored is None else _dumps(stored) or ""), {}
    try:
        value = json.loads(stored)
    except ValueError:
        return stored, {}  # plain text already
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, dict):
        return stored, {}
    if "text" in value:
        details = {
            key: value[key]
            for key in ("schema", "threshold", "include_confidence", "include_spans")
            if key in value
        }
        text = value["text"]
        if isinstance(text, list):
            return _dumps(text) or "[]", {"input_kind": "texts", **details}
        return str(text), {"input_kind": "text", **details}
    if "messages" in value or "prompt" in value:
        details = {"sampling": value.get("sampling") or {}}
        if value.get("messages") is not None:
            if value.get("prompt") is not None:
                details["prompt"] = value["prompt"]
            return _dumps(value["messages"]) or "[]", {"input_kind": "messages", **details}
        return str(value["prompt"]), {"input_kind": "prompt", **details}
    return stored, {}
