"""Inference history: GET /inferences, GET /inferences/{id}, feedback, and usage.

Reads run in this replica (app/history/client.py: its own DuckDB over the Recorder's
snapshot); feedback is written through the Recorder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.auth import Principal, authenticate
from app.api.json_body import read_json
from app.api.native import body_validation_error
from app.api.state import current
from app.history.queries import InferenceFilters
from app.history.records import feedback_row
from app.protocol import ApiError, ApiException, quoted
from app.wire.history import FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["inference-history"])


# DuckDB binds LIMIT/OFFSET as BIGINT: an offset past this is a client error, not a crash.
MAX_OFFSET = 2**62


def _utc(value: datetime | None, name: str) -> datetime | None:
    """As UTC; a time whose UTC form is outside years 1-9999 is the client's error (422)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "Datetime is out of range once converted to UTC (years 1-9999)",
                    "type": "datetime_out_of_range",
                }
            ]
        ) from None


def _not_found(inference_id: str) -> ApiException:
    return ApiException(
        ApiError(404, "not_found", f"Inference {quoted(inference_id)} was not found.")
    )


@router.get("/inferences", summary="List inference history, newest first")
async def list_inferences(
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    model_id: str | None = Query(None),
    task: str | None = Query(
        None,
        description="extract_entities (or ner), classify_text (or classification), "
        "extract_json (or json, structures), extract_relations (or relations), generate; "
        "join with + for records of exactly those parts",
    ),
    project_id: str | None = Query(None),
    training_job_id: str | None = Query(None),
    since: datetime | None = Query(None, description="ISO 8601; created at or after"),
    until: datetime | None = Query(None, description="ISO 8601; created at or before"),
    latency_min: float | None = Query(None, ge=0),
    latency_max: float | None = Query(None, ge=0),
    principal: Principal = Depends(authenticate),
) -> dict[str, Any]:
    if principal.project_id is not None:  # a key sees its own projects, whatever it asks
        if project_id in principal.projects:  # one it may attribute inferences to
            principal = replace(principal, project_id=project_id)
        if project_id not in (None, principal.project_id):
            return {"inferences": [], "total": 0, "limit": limit, "offset": offset}
        project_id = principal.project_id
    filters = InferenceFilters(
        limit=limit,
        offset=offset,
        model_id=model_id,
        task=task,
        project_id=project_id,
        training_job_id=training_job_id,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        latency_min=latency_min,
        latency_max=latency_max,
    )
    rows, total = await current().history.list_inferences(filters)
    return {"inferences": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/inferences/{inference_id}", summary="One inference record")
async def get_inference(
    inference_id: str, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    history = current().history
    row = await history.get_inference(inference_id, principal.project_id)
    for project in sorted(principal.projects) if row is None else ():  # its other projects
        row = await history.get_inference(inference_id, project)
        if row is not None:
            break
    if row is None:
        raise _not_found(inference_id)
    return row


@router.post(
    "/inferences/{inference_id}/feedback",
    response_model=FeedbackResponse,
    summary="Submit a verdict or a correction",
)
async def post_feedback(
    inference_id: str, request: Request, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    state = current()
    body = await read_json(request, state.limits.max_body_bytes)
    try:
        feedback = FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None
    record = await state.history.get_inference(inference_id, principal.project_id)
    if record is None:
        raise _not_found(inference_id)
    row = feedback_row(
        inference_id,
        verdict=feedback.verdict,
        corrected_output=feedback.corrected_output,
        notes=feedback.notes,
        project_id=record.get("project_id"),
        api_key_id=principal.key_id,
    )
    await state.history.add_feedback(row)
    at = row["created_at"].isoformat().replace("+00:00", "Z")
    return {"inference_id": inference_id, "human_verdict": row["verdict"], "human_feedback_at": at}


@router.get("/inferences/{inference_id}/feedback", summary="The latest feedback on an inference")
async def get_feedback(
    inference_id: str, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    row = await current().history.get_feedback(inference_id, principal.project_id)
    if row is None:
        raise ApiException(
            ApiError(
                404, "not_found", f"No feedback has been submitted for {quoted(inference_id)}."
            )
        )
    return row


@router.get("/usage", summary="Tokens and cost per project and model over a time range")
async def usage(
    since: datetime | None = Query(None),
    until: datetime | None = Query(None),
    principal: Principal = Depends(authenticate),
) -> dict[str, Any]:
    rows = await current().history.usage(
        principal.project_id, _utc(since, "since"), _utc(until, "until")
    )
    return {"usage": rows, "since": since, "until": until}
