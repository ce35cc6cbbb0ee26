"""Catalog endpoints: GET /base-models (Pioneer) and GET /v1/models (OpenAI + Anthropic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.api.auth import Principal, authenticate
from app.api.state import current
from app.catalog import Lifecycle
from app.protocol import ApiError, ApiException

router = APIRouter()


@router.get("/base-models", tags=["models"], summary="List the model catalog")
async def base_models(
    request: Request,
    task_type: Literal["encoder", "decoder", "embedding"] | None = Query(None),
    supports_inference: bool | None = Query(None),
    supports_training: bool | None = Query(None),
    supports_on_demand_inference: bool | None = Query(None),
    lifecycle: Lifecycle | None = Query(None),
    _: Principal = Depends(authenticate),
) -> dict[str, Any]:
    """Each entry: id, display_name, task_type, context_window, the four per-1M prices,
    supports_training / supports_inference / supports_on_demand_inference, lifecycle."""
    cards = await current().gateway.list_models(include_jobs=False)
    wanted = {
        "task_type": task_type,
        "supports_inference": supports_inference,
        "supports_training": supports_training,
        "supports_on_demand_inference": supports_on_demand_inference,
        "lifecycle": lifecycle,
    }
    models = [
        card
        for card in cards
        if all(value is None or card.get(key) == value for key, value in wanted.items())
    ]
    return {"models": models}


# The catalog's lifecycle in Anthropic's words (its ModelInfo.lifecycle): a preview model is
# callable and open to new users, which Anthropic calls active.
ANTHROPIC_LIFECYCLE = {"ga": "active", "preview": "active", "deprecated": "deprecated"}


def _model_object(card: dict[str, Any]) -> dict[str, Any]:
    """One entry readable by both the OpenAI and the Anthropic SDK's model listing."""
    created = datetime.fromisoformat(card["created_at"].replace("Z", "+00:00"))
    entry = {
        "id": card["id"],
        "object": "model",
        "created": int(created.timestamp()),
        "owned_by": "pioneer",
        "type": "model",
        "display_name": card["display_name"],
        "created_at": card["created_at"],
        "lifecycle": ANTHROPIC_LIFECYCLE.get(card.get("lifecycle", "ga"), "active"),
        "task_type": card["task_type"],
        "status": card["status"],
        "ready": card["status"] == "loaded",
        "supports_inference": card["supports_inference"],
    }
    if "context_window" in card:
        entry["max_input_tokens"] = card["context_window"]
    if "dimensions" in card:  # embedding models: the length of their vectors
        entry["dimensions"] = card["dimensions"]
    return entry


@router.get("/v1/models", tags=["openai-compat"], summary="List models")
async def list_models(
    request: Request,
    limit: int | None = Query(None, ge=1),
    after_id: str | None = Query(None),
    before_id: str | None = Query(None),
) -> dict[str, Any]:
    cards = await current().gateway.list_models(include_jobs=True)
    data = [_model_object(card) for card in cards]
    ids = [item["id"] for item in data]
    if after_id is not None and after_id in ids:
        data = data[ids.index(after_id) + 1 :]
    if before_id is not None and before_id in ids:
        data = data[: ids.index(before_id)]
    has_more = limit is not None and len(data) > limit
    data = data[:limit] if limit is not None else data
    listing: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more}
    if data:  # ModelListResponse types the cursors as strings: an empty page has none
        listing |= {"first_id": data[0]["id"], "last_id": data[-1]["id"]}
    return listing


@router.get("/v1/models/{model_id:path}", tags=["openai-compat"], summary="Retrieve a model")
async def retrieve_model(request: Request, model_id: str) -> dict[str, Any]:
    cards = await current().gateway.list_models(include_jobs=True)
    for card in cards:
        if card["id"] == model_id or model_id in card.get("aliases", []):
            return _model_object(card)
    raise ApiException(ApiError.model_not_found(model_id))
