"""The ingress replica's wiring, reachable from routes and middleware.

Ray Serve serves a copy of the FastAPI app inside each replica, so state set on the module's
app object would not reach it; routes look it up here instead (one ingress per process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.config import LimitsConfig
from app.protocol import ApiError, ApiException


@dataclass(frozen=True)
class ServerState:
    gateway: Any  # app.gateway.InferenceGateway
    authenticator: Any  # app.api.auth.Authenticator
    limits: LimitsConfig
    admissions: Any  # app.admission.Admissions
    gliner2_model: str = "pioneer-demo/gliner2-minilm-demo"  # what POST /gliner-2 runs
    embeddings: Any = None  # app.embedding_gateway.EmbeddingGateway (POST /v1/embeddings)
    history: Any = None  # app.history.client.HistoryClient (GET /inferences, /usage, ...)


_current: ServerState | None = None


def install(state: ServerState) -> None:
    global _current
    _current = state


def current() -> ServerState:
    if _current is None:
        raise ApiException(ApiError(503, "starting", "The server is still starting; retry."))
    return _current


def body_limit() -> int:
    return _current.limits.max_body_bytes if _current else LimitsConfig().max_body_bytes
