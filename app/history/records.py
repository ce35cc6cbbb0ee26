"""Row shapes of the three datasets, and how an inference becomes rows. No I/O here.

JSON-valued fields (input, output, metadata, corrected_output) are stored as JSON text so the
Parquet schema stays fixed; DuckDB's json functions read them in ad-hoc SQL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from app.protocol import LONE_SURROGATE, ApiError, InferenceRequest, ResolvedModel

TIMESTAMP = pa.timestamp("us", tz="UTC")

INFERENCES = pa.schema(
    [
        ("id", pa.string()),
        ("user_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model_id", pa.string()),
        ("model_name", pa.string()),
        ("task", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("latency_ms", pa.int64()),
        ("tokens", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("source", pa.string()),
        ("format", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("created_at", TIMESTAMP),
        ("project_id", pa.string()),
        ("training_job_id", pa.string()),
        ("provider", pa.string()),
        ("base_model", pa.string()),
        ("metadata", pa.string()),
    ]
)

BILLING = pa.schema(
    [
        ("id", pa.string()),  # the inference id: one event per inference
        ("project_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model_id", pa.string()),
        ("base_model", pa.string()),
        ("training_job_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("status", pa.string()),
        ("created_at", TIMESTAMP),
    ]
)

FEEDBACK = pa.schema(
    [
        ("id", pa.string()),  # the feedback event's own id; the latest per inference wins
        ("inference_id", pa.string()),
        ("project_id", pa.string()),
        ("api_key_id", pa.string()),
        ("verdict", pa.string()),
        ("corrected_output", pa.string()),
        ("notes", pa.string()),
        ("created_at", TIMESTAMP),
    ]
)

# A bill's status when the inference ran but its history row could not be kept (the caller
# got a 503 instead of the result); "success" and "failed" are the others.
UNRECORDED = "unrecorded"

SCHEMAS = {"inferences": INFERENCES, "billing": BILLING, "feedback": FEEDBACK}
JSON_FIELDS = {"input", "output", "metadata", "corrected_output", "human_corrected_output"}

# Schema sections -> task names (docs: extract_entities, classify_text, extract_json, ...).
# A combined schema joins them with "+" in this order, e.g. "extract_entities+classify_text".
TASK_BY_SECTION = {
    "entities": "extract_entities",
    "classifications": "classify_text",
    "structures": "extract_json",
    "relations": "extract_relations",
}

# ApiError codes -> the contract's InferenceRecord.error_type
ERROR_TYPES = {
    "invalid_request": "validation",
    "model_not_found": "model_not_found",
    "model_unavailable": "model_not_ready",
    "backend_unavailable": "capacity_exhausted",
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


def task_name(request: InferenceRequest) -> str:
    if request.task == "generate":
        return "generate"
    schema = request.schema or {}
    return "+".join(task for section, task in TASK_BY_SECTION.items() if schema.get(section))


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def cost_usd(model: ResolvedModel | None, input_tokens: int, output_tokens: int) -> float:
    if model is None:
        return 0.0
    return (
        input_tokens * model.input_price_per_million
        + output_tokens * model.output_price_per_million
    ) / 1_000_000


def request_input(request: InferenceRequest) -> dict[str, Any]:
    """What ran: the texts and schema, or the messages / prompt and the sampling settings."""
    if request.task == "generate":
        sampling = {k: v for k, v in asdict(request.sampling).items() if v not in (None, (), False)}
        body = {"messages": request.messages} if request.messages is not None else {}
        if request.prompt is not None:
            body["prompt"] = request.prompt
        return {**body, "sampling": sampling}
    return {
        "text": request.texts if request.batched else request.texts[0],
        "schema": request.schema,
        "threshold": request.options.threshold,
        "include_confidence": request.options.include_confidence,
        "include_spans": request.options.include_spans,
    }


def inference_row(
    request: InferenceRequest,
    created_at: datetime,
    *,
    model: ResolvedModel | None,
    output: Any = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    error: ApiError | None = None,
    latency_ms: float = 0.0,
) -> dict[str, Any]:
    """The history row. Only called when `store` is true: it holds the payload."""
    return {
        "id": request.inference_id,
        "user_id": request.api_key_id or "anonymous",
        "api_key_id": request.api_key_id,
        "model_id": request.model_id,
        "model_name": model.display_name if model else None,
        "task": task_name(request),
        "input": _dumps(request_input(request)),
        "output": _dumps(output),
        "latency_ms": round(latency_ms),
        "tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": 0,
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
                "texts": len(request.texts),
                "stream": request.stream,
                "model_used": model.model_key if model else None,
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
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": cost_usd(model, input_tokens, output_tokens),
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
    """A stored row as the API returns it: JSON fields parsed, times as ISO 8601 UTC."""
    wire = {}
    for key, value in row.items():
        if key in JSON_FIELDS and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        wire[key] = value
    return wire
