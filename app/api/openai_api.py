"""The OpenAI-compatible door: /v1/chat/completions, /v1/completions, /v1/responses.

LLMs generate; a GLiNER2 model extracts with the `schema` extra field (or a `response_format`
JSON schema) and answers with the result as JSON text, in the same response shapes. Each
route is a `ChatDoor` for the shared pipeline (app/api/chat_shaped.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.auth import Principal, authenticate, requested_project
from app.api.chat_shaped import (
    Answer,
    ChatDoor,
    Extraction,
    OneRun,
    last_user_text,
    serve,
)
from app.api.state import current
from app.protocol import ApiError, ApiException, InferenceRequest, quoted
from app.translators import openai_format, openai_responses
from app.wire.openai_wire import (
    ChatCompletionRequest,
    CompletionRequest,
    ResponsesRequest,
    SamplingFields,
)

router = APIRouter(tags=["openai-compat"])
SAMPLING = {"temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty"}
TOOLS = {"tools", "tool_choice", "parallel_tool_calls"}


def _include_usage(wire: SamplingFields) -> bool:
    return bool(wire.stream_options and wire.stream_options.include_usage)


# ---- /v1/chat/completions --------------------------------------------------------------------


async def _chat_requests(wire: ChatCompletionRequest, who: Principal) -> list[InferenceRequest]:
    project = who.project_for(requested_project(wire))
    return [openai_format.chat_to_internal(wire, project_id=project, api_key_id=who.key_id)]


def _chat_extraction(wire: ChatCompletionRequest) -> Extraction:
    response_format = wire.response_format
    json_schema = None
    if response_format is not None and response_format.type == "json_schema":
        json_schema = (response_format.json_schema or {}).get("schema")
    turns = [openai_format.chat_message(m) for m in wire.messages]
    return Extraction(last_user_text(turns), json_schema=json_schema)


def _chat_answer(wire: ChatCompletionRequest, requests: list[InferenceRequest]) -> Answer:
    answer = openai_format.ChatAnswer(requests[0], wire.model)
    include_usage = _include_usage(wire)
    return OneRun(
        answer.response,
        lambda events, tally: answer.stream(events, tally, include_usage),
        answer.keep_logprobs,
    )


CHAT = ChatDoor(
    ChatCompletionRequest,
    "openai.chat",
    _chat_requests,
    _chat_extraction,
    _chat_answer,
    frozenset(SAMPLING | TOOLS | {"logprobs", "top_logprobs", "reasoning_effort", "reasoning"}),
)


@router.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
async def chat_completions(
    request: Request, principal: Principal = Depends(authenticate)
) -> Response:
    return await serve(request, principal, CHAT)


# ---- /v1/completions -------------------------------------------------------------------------


def _prompts(wire: CompletionRequest) -> list[str]:
    return [wire.prompt] if isinstance(wire.prompt, str) else list(wire.prompt)


async def _completion_requests(wire: CompletionRequest, who: Principal) -> list[InferenceRequest]:
    if wire.suffix is not None:
        raise ApiException(
            ApiError.invalid("suffix (insertion) is not supported by these models.", "suffix", 400)
        )
    project = who.project_for(requested_project(wire))
    return [
        openai_format.completion_to_internal(
            wire, prompt, project_id=project, api_key_id=who.key_id
        )
        for prompt in _prompts(wire)
    ]


def _completion_extraction(wire: CompletionRequest) -> Extraction:
    return Extraction(_prompts(wire), batched=isinstance(wire.prompt, list))


def _completion_answer(wire: CompletionRequest, requests: list[InferenceRequest]) -> Answer:
    return openai_format.CompletionAnswer(requests, wire.model, _include_usage(wire))


COMPLETIONS = ChatDoor(
    CompletionRequest,
    "openai.completions",
    _completion_requests,
    _completion_extraction,
    _completion_answer,
    frozenset(SAMPLING | {"logprobs", "echo", "suffix"}),
)


@router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
async def completions(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    return await serve(request, principal, COMPLETIONS)


# ---- /v1/responses ---------------------------------------------------------------------------


async def _previous(wire: ResponsesRequest, who: Principal) -> dict[str, Any] | None:
    if not wire.previous_response_id:
        return None
    previous_id = openai_responses.inference_id_of(wire.previous_response_id)
    previous = await current().history.get_inference(previous_id, who.project_id)
    if previous is None or previous.get("format") != "openai.responses":
        raise ApiException(
            ApiError.invalid(
                f"Previous response {quoted(wire.previous_response_id)} was not found: it does "
                "not exist, or it was created with store: false and so was never kept.",
                "previous_response_id",
                status=400,
            )
        )
    return previous


async def _responses_requests(wire: ResponsesRequest, who: Principal) -> list[InferenceRequest]:
    previous = await _previous(wire, who)
    project = who.project_for(requested_project(wire))
    return [openai_responses.to_internal(wire, previous, project_id=project, api_key_id=who.key_id)]


def _responses_extraction(wire: ResponsesRequest) -> Extraction:
    turns = openai_responses.to_internal(wire, None, project_id=None, api_key_id=None)
    return Extraction(last_user_text(turns.messages or []))


def _responses_answer(wire: ResponsesRequest, requests: list[InferenceRequest]) -> Answer:
    answer = openai_responses.ResponsesAnswer(requests[0], wire)
    return OneRun(lambda tally: answer.response(tally, "completed"), answer.stream)


RESPONSES = ChatDoor(
    ResponsesRequest,
    "openai.responses",
    _responses_requests,
    _responses_extraction,
    _responses_answer,
    frozenset(
        TOOLS | {"temperature", "top_p", "instructions", "previous_response_id", "reasoning"}
    ),
)


@router.post("/v1/responses", summary="Responses API (OpenAI-compatible)")
async def responses(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    return await serve(request, principal, RESPONSES)
