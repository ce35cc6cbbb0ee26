"""The Anthropic-compatible door: POST /v1/messages and /v1/messages/count_tokens.

Also served under /v1/v1/...: Pioneer's pages tell Anthropic SDK users to set base_url to
`.../v1`, and that SDK appends `/v1/messages` itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import Principal, authenticate, requested_project
from app.api.chat_shaped import (
    drain,
    explicit,
    last_user_text,
    parse,
    resolve_model,
    start_extraction,
    start_generation,
)
from app.api.openai_api import headers, sse_response
from app.api.state import current
from app.protocol import ApiError, ApiException, InferenceRequest
from app.translators import anthropic_format
from app.wire.anthropic_wire import CountTokensRequest, MessagesRequest

router = APIRouter(tags=["anthropic-compat"])


@router.post("/v1/messages", summary="Create a message (Anthropic-compatible)")
@router.post("/v1/v1/messages", include_in_schema=False)
async def messages(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, MessagesRequest)
    internal = anthropic_format.to_internal(
        wire, project_id=principal.project_for(requested_project(wire)), api_key_id=principal.key_id
    )
    model = await resolve_model(wire.model)
    if model.kind == "encoder":
        events, tally, internal = await start_extraction(
            wire.model,
            last_user_text(internal.messages or []),
            wire,
            principal,
            model=model,
            source="anthropic.messages",
            store=wire.store,
            decoder_params=explicit(wire, {"temperature", "top_p", "top_k", "stop_sequences"}),
        )
    else:
        events, tally = await start_generation(internal, wire, model)
    answer = anthropic_format.MessageAnswer(internal, wire.model)
    if wire.stream:
        return sse_response(answer.stream(events, tally), internal)
    await drain(events, tally)
    return JSONResponse(answer.response(tally), headers=headers(internal))


@router.post("/v1/messages/count_tokens", summary="Count a message's input tokens")
@router.post("/v1/v1/messages/count_tokens", include_in_schema=False)
async def count_tokens(
    request: Request, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    wire = await parse(request, CountTokensRequest)
    turns = anthropic_format.messages_of(
        MessagesRequest(model=wire.model, max_tokens=1, messages=wire.messages, system=wire.system)
    )
    probe = InferenceRequest(model_id=wire.model, task="generate", messages=turns)
    model = await resolve_model(wire.model)
    if model.kind == "encoder":
        raise ApiException(
            ApiError.invalid(
                "count_tokens is for LLMs; extraction results report their input tokens.",
                "model",
                400,
            )
        )
    _, tokens = await current().gateway.count_tokens(probe)
    return {"input_tokens": tokens}
