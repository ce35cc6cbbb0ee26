"""The OpenAI-compatible door: /v1/chat/completions, /v1/completions, /v1/responses.

LLMs generate; a GLiNER2 model extracts with the `schema` extra field (or a `response_format`
JSON schema) and answers with the result as JSON text, in the same response shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

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
from app.api.state import current
from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    InferenceRequest,
    ResolvedModel,
    TokenDelta,
    quoted,
)
from app.streams import joined
from app.translators import openai_format, openai_responses
from app.wire.openai_wire import ChatCompletionRequest, CompletionRequest, ResponsesRequest

router = APIRouter(tags=["openai-compat"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SAMPLING = {"temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty"}


def headers(request: InferenceRequest) -> dict[str, str]:
    return {"X-Inference-Id": request.inference_id}


def sse_response(chunks: AsyncIterator[bytes], request: InferenceRequest) -> StreamingResponse:
    return StreamingResponse(
        joined(chunks), media_type="text/event-stream", headers=SSE_HEADERS | headers(request)
    )


@router.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
async def chat_completions(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, ChatCompletionRequest)
    internal = openai_format.chat_to_internal(
        wire, project_id=principal.project_for(requested_project(wire)), api_key_id=principal.key_id
    )
    model = await resolve_model(wire.model)
    if model.kind == "encoder":
        response_format = wire.response_format
        json_schema = None
        if response_format is not None and response_format.type == "json_schema":
            json_schema = (response_format.json_schema or {}).get("schema")
        events, tally, internal = await start_extraction(
            wire.model,
            last_user_text(internal.messages or []),
            wire,
            principal,
            model=model,
            source="openai.chat",
            store=wire.store,
            decoder_params=explicit(wire, SAMPLING | {"logprobs", "top_logprobs"}),
            json_schema=json_schema,
        )
    else:
        events, tally = await start_generation(internal, wire, model)
    answer = openai_format.ChatAnswer(internal, wire.model)
    if wire.stream:
        include_usage = bool(wire.stream_options and wire.stream_options.include_usage)
        return sse_response(answer.stream(events, tally, include_usage), internal)
    await drain(events, tally, answer.keep_logprobs)
    return JSONResponse(answer.response(tally), headers=headers(internal))


@router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
async def completions(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, CompletionRequest)
    prompts = [wire.prompt] if isinstance(wire.prompt, str) else list(wire.prompt)
    model = await resolve_model(wire.model)
    if model.kind == "encoder":
        events, tally, internal = await start_extraction(
            wire.model,
            prompts,
            wire,
            principal,
            model=model,
            source="openai.completions",
            store=wire.store,
            decoder_params=explicit(wire, SAMPLING | {"logprobs", "echo", "suffix"}),
            batched=isinstance(wire.prompt, list),
        )
        started = [(events, tally)]
        requests = [internal]
    else:
        if wire.suffix is not None:
            raise ApiException(
                ApiError.invalid(
                    "suffix (insertion) is not supported by these models.", "suffix", 400
                )
            )
        requests = [
            openai_format.completion_to_internal(
                wire,
                prompt,
                project_id=principal.project_for(requested_project(wire)),
                api_key_id=principal.key_id,
            )
            for prompt in prompts
        ]
        started = [await start_generation(requests[0], wire, model)]  # opens before any 200
    answer = openai_format.CompletionAnswer(requests, wire.model)
    if wire.stream:
        include_usage = bool(wire.stream_options and wire.stream_options.include_usage)
        return sse_response(
            _stream_completions(answer, requests, started[0], wire, model, include_usage),
            requests[0],
        )
    tallies, logprobs = [], []
    for index, request_ in enumerate(requests):
        events, tally = started[0] if index == 0 else await start_generation(request_, wire, model)
        kept: dict[int, list] = {}
        await drain(events, tally, lambda e, kept=kept: _keep(kept, e))
        tallies.append(tally)
        logprobs.append(kept)
    return JSONResponse(answer.response(tallies, logprobs), headers=headers(requests[0]))


def _keep(kept: dict[int, list], event: Any) -> None:
    if isinstance(event, TokenDelta) and event.logprobs is not None:
        kept.setdefault(event.index, []).extend(event.logprobs)


async def _stream_completions(
    answer: openai_format.CompletionAnswer,
    requests: list[InferenceRequest],
    first: tuple[AsyncIterator[Any], GenerationTally],
    wire: CompletionRequest,
    model: ResolvedModel,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    tallies = []
    for index, request in enumerate(requests):
        try:
            events, tally = first if index == 0 else await start_generation(request, wire, model)
        except ApiException as exc:
            yield openai_format.sse(openai_format.to_error(exc.error)[1])
            yield openai_format.DONE
            return
        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                if isinstance(event, ApiError):
                    yield openai_format.sse(openai_format.to_error(event)[1])
                    yield openai_format.DONE
                    return
                if isinstance(event, (TokenDelta, ChoiceFinished)):
                    yield answer.delta_chunk(index, request, event, tally)
        tallies.append(tally)
    if include_usage:  # the choice-less usage chunk only when asked, as OpenAI does
        total = GenerationTally(
            prompt_tokens=sum(t.prompt_tokens for t in tallies),
            tokens={i: t.completion_tokens for i, t in enumerate(tallies)},
        )
        pioneer = openai_format.pioneer(requests[0])
        yield answer.chunk([], usage=openai_format.usage(total), x_pioneer=pioneer)
    yield openai_format.DONE


@router.post("/v1/responses", summary="Responses API (OpenAI-compatible)")
async def responses(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, ResponsesRequest)
    previous = None
    if wire.previous_response_id:
        previous_id = openai_responses.inference_id_of(wire.previous_response_id)
        previous = await current().gateway.history(
            "get_inference", previous_id, principal.project_id
        )
        if previous is None or previous.get("format") != "openai.responses":
            raise ApiException(
                ApiError.invalid(
                    f"Previous response {quoted(wire.previous_response_id)} was not found: it does "
                    "not exist, or it was created with store: false and so was never kept.",
                    "previous_response_id",
                    status=400,
                )
            )
    model = await resolve_model(wire.model)
    if model.kind == "encoder":
        text = openai_responses.to_internal(wire, None, project_id=None, api_key_id=None)
        events, tally, internal = await start_extraction(
            wire.model,
            last_user_text(text.messages or []),
            wire,
            principal,
            model=model,
            source="openai.responses",
            store=wire.store,
            decoder_params=explicit(
                wire, {"temperature", "top_p", "instructions", "previous_response_id"}
            ),
        )
    else:
        internal = openai_responses.to_internal(
            wire,
            previous,
            project_id=principal.project_for(requested_project(wire)),
            api_key_id=principal.key_id,
        )
        events, tally = await start_generation(internal, wire, model)
    answer = openai_responses.ResponsesAnswer(internal, wire)
    if wire.stream:
        return sse_response(answer.stream(events, tally), internal)
    await drain(events, tally)
    return JSONResponse(answer.response(tally, "completed"), headers=headers(internal))
