"""The OpenAI-compatible embeddings door: POST /v1/embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import Principal, authenticate, requested_project
from app.api.chat_shaped import parse
from app.api.state import current
from app.protocol import ApiError, ApiException
from app.translators import embeddings
from app.wire.embeddings_wire import EmbeddingRequest

router = APIRouter(tags=["openai-compat"])


@router.post("/v1/embeddings", summary="Create embeddings (OpenAI-compatible)")
async def create_embeddings(
    request: Request, principal: Principal = Depends(authenticate)
) -> JSONResponse:
    wire = await parse(request, EmbeddingRequest)
    state = current()
    internal = embeddings.to_internal(
        wire,
        project_id=principal.project_for(requested_project(wire)),
        api_key_id=principal.key_id,
        max_inputs=state.limits.max_texts_per_request,
    )
    if state.embeddings is None:
        raise ApiException(ApiError(503, "starting", "The server is still starting; retry."))
    _, outcome = await state.embeddings.embed(internal, wire.dimensions, wire.encoding_format)
    body = embeddings.to_response(
        internal, wire.model, outcome.vectors, outcome.input_tokens, wire.encoding_format
    )
    return JSONResponse(body, headers={"X-Inference-Id": internal.inference_id})
