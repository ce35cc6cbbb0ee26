"""The FastAPI app the ingress deployment serves: one router per format, shared errors."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from app.api import (
    anthropic_api,
    catalog,
    embeddings_api,
    gliner2_api,
    health,
    history,
    native,
    openai_api,
)
from app.api.errors import BodySizeLimit, install_error_handlers
from app.api.limits import rate_limited
from app.api.state import body_limit


def create_api() -> FastAPI:
    api = FastAPI(
        title="Pioneer-compatible inference server",
        version="0.1.0",
        description="GLiNER2 extraction, LLM generation and sentence embeddings behind the "
        "Pioneer, OpenAI and Anthropic APIs.",
    )
    api.add_middleware(BodySizeLimit, limit=body_limit)
    install_error_handlers(api)
    # Endpoint groups of rate-limits.mdx; health and docs are not limited.
    for router, group in (
        (native.router, "inference"),
        (gliner2_api.router, "gliner2"),
        (openai_api.router, "compatible"),
        (embeddings_api.router, "compatible"),
        (anthropic_api.router, "compatible"),
        (history.router, "other"),
        (catalog.router, "other"),
    ):
        api.include_router(router, dependencies=[Depends(rate_limited(group))])
    api.include_router(health.router)
    return api
