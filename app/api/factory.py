"""The FastAPI app the ingress deployment serves: one router per format, shared errors."""

from __future__ import annotations

from fastapi import FastAPI

from app.api import anthropic_api, catalog, health, history, native, openai_api
from app.api.errors import BodySizeLimit, install_error_handlers
from app.api.state import body_limit


def create_api() -> FastAPI:
    api = FastAPI(
        title="Pioneer-compatible inference server",
        version="0.1.0",
        description="GLiNER2 extraction behind the Pioneer, OpenAI and Anthropic APIs.",
    )
    api.add_middleware(BodySizeLimit, limit=body_limit)
    install_error_handlers(api)
    api.include_router(native.router)
    api.include_router(openai_api.router)
    api.include_router(anthropic_api.router)
    api.include_router(history.router)
    api.include_router(catalog.router)
    api.include_router(health.router)
    return api
