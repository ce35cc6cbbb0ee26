"""The Anthropic-compatible door: POST /v1/messages and /v1/messages/count_tokens.

Also served under /v1/v1/...: Pioneer's pages tell Anthropic SDK users to set base_url to
`.../v1`, and that SDK appends `/v1/messages` itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.auth import Principal, authenticate, requested_project
from app.api.chat_shaped import Answer, ChatDoor, Extraction, OneRun, last_user_text, parse, serve
from app.api.state import current
from app.protocol import ApiError, ApiException, InferenceRequest
from app.translators import anthropic_format
from app.wire.anthropic_wire import CountTokensRequest, MessagesRequest

router = APIRouter(tags=["anthropic-compat"])


async def _requests(wire: MessagesRequest, who: Principal) -> list[InferenceRequest]:
    project = who.project_for(requested_project(wire))
    return [anthropic_format.to_internal(wire, project_id=project, api_key_id=who.key_id)]


def _extraction(wire: MessagesRequest) -> Extraction:
    return Extraction(last_user_text(anthropic_format.messages_of(wire)))


def _answer(wire: MessagesRequest, requests: list[InferenceRequest]) -> Answer:
    answer = anthropic_format.MessageAnswer(requests[0], wire.model)
    return OneRun(answer.response, answer.stream)


MESSAGES = ChatDoor(
    MessagesRequest,
    "anthropic.messages",
    _requests,
    _extraction,
    _answer,
    frozenset(
        {"temperature", "top_p", "top_k", "stop_sequences", "tools", "tool_choice", "thinking"}
    ),
)


@router.post("/v1/messages", summary="Create a message (Anthropic-compatible)")
@router.post("/v1/v1/messages", include_in_schema=False)
async def messages(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    return await serve(request, principal, MESSAGES)


@router.post("/v1/messages/count_tokens", summary="Count a message's input tokens")
@router.post("/v1/v1/messages/count_tokens", include_in_schema=False)
async def count_tokens(
    request: Request, principal: Principal = Depends(authenticate)
) -> dict[str, Any]:
    wire = await parse(request, CountTokensRequest)
    reasoning, _ = anthropic_format.thinking_of(wire)
    probe = InferenceRequest(
        model_id=wire.model,
        task="generate",
        messages=anthropic_format.messages_of(wire),
        tools=anthropic_format.tools_of(wire),
        reasoning=reasoning,
    )
    model = await current().gateway.resolve(wire.model)
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
