"""One pipeline for the chat-shaped doors (/v1/chat/completions, /v1/completions,
/v1/responses, /v1/messages).

Each door is a `ChatDoor`: its wire model, how it becomes canonical requests, which of its
parameters only mean something to an LLM, and how its answer is rendered. The pipeline does
the rest the same way for all: parse, resolve the model, extract (a GLiNER2 model) or
generate (an LLM), then answer whole or as a stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from app.api.auth import Principal, requested_project
from app.api.json_body import read_json
from app.api.native import body_validation_error
from app.api.state import current
from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    InferenceRequest,
    ReasoningDelta,
    ResolvedModel,
    SourceFormat,
)
from app.streams import joined
from app.translators import encoder_chat
from app.wire.encoder_fields import EncoderFields

Wire = TypeVar("Wire", bound=EncoderFields)
Model = TypeVar("Model", bound=BaseModel)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class Run:
    """One generation (or extraction) under way: a completions call with a list of prompts
    has one per prompt, every other door exactly one."""

    position: int
    request: InferenceRequest
    events: AsyncIterator[Any]
    tally: GenerationTally


class Answer(Protocol):
    def keep(self, position: int, event: Any) -> None:
        """Sees every event of a whole (not streamed) answer, before `response`."""

    def response(self, tallies: list[GenerationTally]) -> dict[str, Any]: ...

    def stream(self, runs: AsyncIterator[Run]) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Extraction:
    """What a door hands a GLiNER2 model: the texts, and a JSON schema to answer in."""

    texts: list[str]
    batched: bool = False
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChatDoor(Generic[Wire]):
    wire: type[Wire]
    source: SourceFormat
    # The canonical generation requests (one per prompt), attributed to the caller.
    requests: Callable[[Wire, Principal], Awaitable[list[InferenceRequest]]]
    extraction: Callable[[Wire], Extraction]
    answer: Callable[[Wire, list[InferenceRequest]], Answer]
    # Parameters only an LLM takes: set to a non-default, an extraction model refuses them.
    decoder_only: frozenset[str] = field(default_factory=frozenset)


async def parse(request: Request, model: type[Model]) -> Model:
    body = await read_json(request, current().limits.max_body_bytes)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None


def explicit(wire: BaseModel, names: set[str] | frozenset[str]) -> set[str]:
    """Parameters the client set to something other than their default."""
    fields = type(wire).model_fields
    return {
        name
        for name in names & wire.model_fields_set
        if getattr(wire, name) != fields[name].default
    }


def last_user_text(messages: list[dict[str, Any]]) -> list[str]:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1:]


def inference_headers(request: InferenceRequest) -> dict[str, str]:
    return {"X-Inference-Id": request.inference_id}


async def serve(request: Request, principal: Principal, door: ChatDoor[Any]) -> Response:
    wire = await parse(request, door.wire)
    model = await current().gateway.resolve(wire.model)  # once: the gateway reuses it
    if model.kind == "encoder":
        first = await _start_extraction(wire, door, principal, model)
        requests = [first.request]
    else:
        requests = await door.requests(wire, principal)
        first = Run(0, requests[0], *await _start_generation(requests[0], wire, model))
    answer = door.answer(wire, requests)
    runs = _runs(first, requests, wire, model)
    if wire.stream:
        return StreamingResponse(
            joined(answer.stream(runs)),
            media_type="text/event-stream",
            headers=SSE_HEADERS | inference_headers(requests[0]),
        )
    tallies = []
    async for run in runs:
        async with aclosing(run.events) as events:  # closing us closes the source
            async for event in events:
                answer.keep(run.position, event)
        if run.tally.error is not None:
            raise ApiException(run.tally.error)
        tallies.append(run.tally)
    return JSONResponse(answer.response(tallies), headers=inference_headers(requests[0]))


async def _start_generation(
    request: InferenceRequest, fields: EncoderFields, model: ResolvedModel
) -> tuple[AsyncIterator[Any], GenerationTally]:
    """Open a generation; errors before the first event become plain error responses."""
    encoder_chat.refuse_encoder_fields(fields, request.model_id)
    tally = GenerationTally()
    events = current().gateway.generate(request, tally, model)
    await anext(events)  # GenerationStarted (tallied), or an ApiException raised
    if not request.show_reasoning:  # the model reasons, the client does not see it
        events = _without_reasoning(events)
    return events, tally


async def _without_reasoning(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async with aclosing(events) as source:
        async for event in source:
            if not isinstance(event, ReasoningDelta):
                yield event


async def _runs(
    first: Run, requests: list[InferenceRequest], wire: Any, model: ResolvedModel
) -> AsyncIterator[Run]:
    """The first run (opened before any 200), then the others as the answer gets to them;
    one that cannot open becomes a run whose only event is its error."""
    yield first
    for position, request in enumerate(requests[1:], start=1):
        try:
            events, tally = await _start_generation(request, wire, model)
        except ApiException as exc:
            tally = GenerationTally(error=exc.error)
            events = _single(exc.error)
        yield Run(position, request, events, tally)


async def _single(error: ApiError) -> AsyncIterator[Any]:
    yield error


async def _start_extraction(
    wire: Any, door: ChatDoor[Any], principal: Principal, model: ResolvedModel
) -> Run:
    encoder_chat.refuse_decoder_params(explicit(wire, door.decoder_only), wire.model)
    state = current()
    wanted = door.extraction(wire)
    request, shaper = encoder_chat.to_extraction(
        wire.model,
        wanted.texts,
        wire,
        json_schema=wanted.json_schema,
        batched=wanted.batched,
        source=door.source,
        store=wire.store,
        project_id=principal.project_for(requested_project(wire)),
        api_key_id=principal.key_id,
        max_texts=state.limits.max_texts_per_request,
    )
    result = await state.gateway.extract(request, model)
    events, tally = encoder_chat.as_events(result, shaper)
    return Run(0, request, events, tally)


@dataclass(frozen=True)
class OneRun:
    """The Answer of a door with one generation per call, from its translator's own
    `response(tally)` and `stream(events, tally)`."""

    respond: Callable[[GenerationTally], dict[str, Any]]
    render: Callable[[AsyncIterator[Any], GenerationTally], AsyncIterator[bytes]]
    keep_event: Callable[[Any], None] | None = None

    def keep(self, position: int, event: Any) -> None:
        if self.keep_event is not None:
            self.keep_event(event)

    def response(self, tallies: list[GenerationTally]) -> dict[str, Any]:
        return self.respond(tallies[0])

    async def stream(self, runs: AsyncIterator[Run]) -> AsyncIterator[bytes]:
        run = await anext(runs)
        async with aclosing(self.render(run.events, run.tally)) as frames:
            async for frame in frames:
                yield frame
