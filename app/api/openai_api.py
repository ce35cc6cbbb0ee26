"""The OpenAI-compatible door: /v1/chat/completions, /v1/completions, /v1/responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from app.api.auth import Principal, authenticate
from app.api.errors import read_json
from app.api.native import body_validation_error
from app.api.state import current
from app.generation import GenerationTally
from app.protocol import ApiException, InferenceRequest, TokenDelta
from app.streams import joined
from app.translators import openai_format, openai_responses
from app.wire.openai_wire import ChatCompletionRequest, CompletionRequest, ResponsesRequest

router = APIRouter(tags=["openai-compat"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


Model = TypeVar("Model", bound=BaseModel)


async def parse(request: Request, model: type[Model]) -> Model:
    body = await read_json(request, current().limits.max_body_bytes)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None


async def start(request: InferenceRequest) -> tuple[AsyncIterator[Any], GenerationTally]:
    """Open the generation; errors before the first event become plain error responses."""
    tally = GenerationTally()
    events = current().gateway.generate(request, tally)
    first = await anext(events)  # GenerationStarted, or ApiException raised

    async def rest() -> AsyncIterator[Any]:
        async for event in events:
            yield event

    del first  # tallied already
    return rest(), tally


async def drain(events: AsyncIterator[Any], tally: GenerationTally, keep: Any = None) -> None:
    async for event in events:
        if keep is not None:
            keep(event)
    if tally.error is not None:
        raise ApiException(tally.error)


def headers(request: InferenceRequest) -> dict[str, str]:
    return {"X-Inference-Id": request.inference_id}


@router.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
async def chat_completions(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, ChatCompletionRequest)
    internal = openai_format.chat_to_internal(
        wire, project_id=principal.project_id, api_key_id=principal.key_id
    )
    events, tally = await start(internal)
    answer = openai_format.ChatAnswer(internal, wire.model)
    if wire.stream:
        include_usage = bool(wire.stream_options and wire.stream_options.include_usage)
        return StreamingResponse(
            joined(answer.stream(events, tally, include_usage)),
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers(internal),
        )
    await drain(events, tally, answer.keep_logprobs)
    return JSONResponse(answer.response(tally), headers=headers(internal))


@router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
async def completions(request: Request, principal: Principal = Depends(authenticate)) -> Any:
    wire = await parse(request, CompletionRequest)
    if wire.suffix is not None:
        raise ApiException(
            openai_format.ApiError.invalid(
                "suffix (insertion) is not supported by these models.", "suffix", status=400
            )
        )
    prompts = [wire.prompt] if isinstance(wire.prompt, str) else list(wire.prompt)
    requests = [
        openai_format.completion_to_internal(
            wire, prompt, project_id=principal.project_id, api_key_id=principal.key_id
        )
        for prompt in prompts
    ]
    answer = openai_format.CompletionAnswer(requests, wire.model)
    started = [await start(r) for r in requests[:1]]  # the first opens before any 200
    if wire.stream:
        include_usage = bool(wire.stream_options and wire.stream_options.include_usage)
        return StreamingResponse(
            joined(_stream_completions(answer, requests, started[0], include_usage)),
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers(requests[0]),
        )
    tallies, logprobs = [], []
    for index, request_ in enumerate(requests):
        events, tally = started[0] if index == 0 else await start(request_)
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
    include_usage: bool,
) -> AsyncIterator[bytes]:
    tallies = []
    for index, request in enumerate(requests):
        try:
            events, tally = first if index == 0 else await start(request)
        except ApiException as exc:
            yield openai_format.sse(openai_format.to_error(exc.error)[1])
            yield openai_format.DONE
            return
        async for event in events:
            if isinstance(event, openai_format.ApiError):
                yield openai_format.sse(openai_format.to_error(event)[1])
                yield openai_format.DONE
                return
            if isinstance(event, (TokenDelta, openai_format.ChoiceFinished)):
                yield answer.delta_chunk(index, request, event, tally)
        tallies.append(tally)
    final: dict[str, Any] = {"x_pioneer": openai_format.pioneer(requests[0])}
    if include_usage:
        final["usage"] = openai_format.usage(
            GenerationTally(
                prompt_tokens=sum(t.prompt_tokens for t in tallies),
                tokens={i: t.completion_tokens for i, t in enumerate(tallies)},
            )
        )
    yield answer.chunk([], **final)
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
                openai_format.ApiError.invalid(
                    f"Previous response {wire.previous_response_id!r} was not found: it does "
                    "not exist, or it was created with store: false and so was never kept.",
                    "previous_response_id",
                    status=400,
                )
            )
    internal = openai_responses.to_internal(
        wire, previous, project_id=principal.project_id, api_key_id=principal.key_id
    )
    events, tally = await start(internal)
    answer = openai_responses.ResponsesAnswer(internal, wire)
    if wire.stream:
        return StreamingResponse(
            joined(answer.stream(events, tally)),
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers(internal),
        )
    await drain(events, tally)
    return JSONResponse(answer.response(tally, "completed"), headers=headers(internal))
