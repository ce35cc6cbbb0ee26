"""What the chat-shaped doors share: pick the model's kind, and run either generation or
(for a GLiNER2 model) extraction as the same kind of event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.api.auth import Principal, requested_project
from app.api.json_body import read_json
from app.api.native import body_validation_error
from app.api.state import current
from app.generation import GenerationTally
from app.protocol import InferenceRequest, ResolvedModel
from app.translators import encoder_chat
from app.wire.encoder_fields import EncoderFields

Model = TypeVar("Model", bound=BaseModel)


async def parse(request: Request, model: type[Model]) -> Model:
    body = await read_json(request, current().limits.max_body_bytes)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None


def explicit(wire: BaseModel, names: set[str]) -> set[str]:
    """Parameters the client set to something other than their default."""
    fields = type(wire).model_fields
    return {
        name
        for name in names & wire.model_fields_set
        if getattr(wire, name) != fields[name].default
    }


async def resolve_model(model_id: str) -> ResolvedModel:
    """Resolved once per request: the route picks generation or extraction by its kind, and
    the gateway reuses it."""
    return await current().gateway.resolve(model_id)


async def start_generation(
    request: InferenceRequest, fields: EncoderFields, model: ResolvedModel | None = None
) -> tuple[AsyncIterator[Any], GenerationTally]:
    """Open a generation; errors before the first event become plain error responses."""
    encoder_chat.refuse_encoder_fields(fields, request.model_id)
    tally = GenerationTally()
    events = current().gateway.generate(request, tally, model)
    await anext(events)  # GenerationStarted (tallied), or an ApiException raised
    return events, tally


async def start_extraction(
    model_id: str,
    texts: list[str],
    fields: EncoderFields,
    principal: Principal,
    *,
    source: Any,
    store: bool,
    decoder_params: set[str],
    model: ResolvedModel | None = None,
    json_schema: dict[str, Any] | None = None,
    batched: bool = False,
) -> tuple[AsyncIterator[Any], GenerationTally, InferenceRequest]:
    encoder_chat.refuse_decoder_params(decoder_params, model_id)
    state = current()
    request, shaper = encoder_chat.to_extraction(
        model_id,
        texts,
        fields,
        json_schema=json_schema,
        batched=batched,
        source=source,
        store=store,
        project_id=principal.project_for(requested_project(fields)),
        api_key_id=principal.key_id,
        max_texts=state.limits.max_texts_per_request,
    )
    result = await state.gateway.extract(request, model)
    events, tally = encoder_chat.as_events(result, shaper)
    return events, tally, request


async def drain(events: AsyncIterator[Any], tally: GenerationTally, keep: Any = None) -> None:
    from app.protocol import ApiException

    async with aclosing(events) as source:  # closing us closes the source
        async for event in source:
            if keep is not None:
                keep(event)
    if tally.error is not None:
        raise ApiException(tally.error)


def last_user_text(messages: list[dict[str, str]]) -> list[str]:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1:]
