"""The FastAPI app the ingress deployment serves: one router per format, shared errors."""

from __future__ import annotations

import asyncio
import time

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
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


class RequestMetrics:
    """Counts each HTTP request by route template, door, model and status, with its latency
    to the last byte sent (a stream's end). The outermost of the app's middleware, so an
    oversized body's 413 counts too; the model is what the gateway resolved for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        labels, token = metrics.track_request()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except asyncio.CancelledError:
            status = status or 499  # the client left before an answer started
            raise
        except Exception:
            status = status or 500  # Starlette's outer handler answers it
            raise
        finally:
            metrics.untrack_request(token)
            route = getattr(scope.get("route"), "path", None)  # the template, set by routing
            latency_ms = (time.perf_counter() - started) * 1000
            fmt = metrics.door_format(scope["path"])
            metrics.request_done(route, fmt, labels.model, status or 500, latency_ms)


def create_api() -> FastAPI:
    api = FastAPI(
        title="Pioneer-compatible inference server",
        version="0.1.0",
        description="GLiNER2 extraction, LLM generation and sentence embeddings behind the "
        "Pioneer, OpenAI and Anthropic APIs.",
    )
    api.add_middleware(BodySizeLimit, limit=body_limit)
    api.add_middleware(RequestMetrics)  # added last: it runs first, around everything
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
