"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.state import current

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the ingress answers")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the configured preload models are loaded")
async def ready(request: Request) -> JSONResponse:
    state = await current().gateway.readiness()
    status = 200 if state["ready"] else 503
    return JSONResponse({"status": "ready" if state["ready"] else "not_ready", **state}, status)
