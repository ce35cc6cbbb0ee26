"""Catalog endpoints: GET /base-models (Pioneer) and GET /v1/models (OpenAI + Anthropic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.api.auth import Principal, authenticate
from app.api.state import current
from app.protocol import ApiError, ApiException

router = APIRouter()


@router.get("/base-models", tags=["models"], summary="List the model catalog")
async def base_models(
    request: Request,
    task_type: Literal["encoder", "decoder"] | None = Query(None),
    supports_inference: bool | None = Query(None),
    supports_training: bool | None = Query(None),
    _: Principal = Depends(authenticate),
) -> dict[str, Any]:
    cards = await current().gateway.list_models(include_jobs=False)
    wanted = {
        "task_type": task_type,
        "supports_inference": supports_inference,
        "supports_training": supports_training,
    }
    models = [
        card
        for card in cards
        if all(value is None or card.get(key) == value for key, value in wanted.items())
    ]
    return {"models": models}


def _model_object(card: dict[str, Any]) -> dict[str, Any]:
    """One entry readable by both the OpenAI and the Anthropic SDK's model listing."""
    created = datetime.fromisoformat(card["created_at"].replace("Z", "+00:00"))
    return {
        "id": card["id"],
        "object": "model",
        "created": int(created.timestamp()),
        "owned_by": "pioneer",
        "type": "model",
        "display_name": card["display_name"],
        "created_at": card["created_at"],
        "task_type": card["task_type"],
        "status": card["status"],
        "ready": card["status"] == "loaded",
        "supports_inference": card["supports_inference"],
    }


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
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get("/v1/models/{model_id:path}", tags=["openai-compat"], summary="Retrieve a model")
async def retrieve_model(request: Request, model_id: str) -> dict[str, Any]:
    cards = await current().gateway.list_models(include_jobs=True)
    for card in cards:
        if card["id"] == model_id or model_id in card.get("aliases", []):
            return _model_object(card)
    raise ApiException(ApiError.model_not_found(model_id))
