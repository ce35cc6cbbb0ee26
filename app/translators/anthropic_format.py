"""Anthropic-compatible format: /v1/messages to canonical, the message, its event stream
(`event: X` / `data: {...}` framing, Anthropic's exact order), and the error body."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.generation import GenerationTally
from app.protocol import ApiError, ChoiceFinished, InferenceRequest, SamplingOptions, TokenDelta
from app.wire.anthropic_wire import MessagesRequest, join_blocks

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def to_error(error: ApiError) -> tuple[int, dict[str, Any]]:
    status = 400 if error.status == 422 else error.status
    if error.code == "overloaded":  # Anthropic's own status for a saturated model
        status = 529
    error_type = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return status, {"type": "error", "error": {"type": error_type, "message": error.message}}


def messages_of(wire: MessagesRequest) -> list[dict[str, str]]:
    turns = [{"role": m.role, "content": join_blocks(m.content)} for m in wire.messages]
    if wire.system:
        turns.insert(0, {"role": "system", "content": join_blocks(wire.system)})
    return turns


def to_internal(
    wire: MessagesRequest, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    return InferenceRequest(
        model_id=wire.model,
        task="generate",
        messages=messages_of(wire),
        sampling=SamplingOptions(
            max_tokens=wire.max_tokens,
            temperature=wire.temperature,
            top_p=wire.top_p,
            top_k=wire.top_k,
            stop=tuple(wire.stop_sequences or ()),
        ),
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="anthropic.messages",
    )


def stop_reason(finished: ChoiceFinished | None) -> tuple[str, str | None]:
    if finished is None or finished.finish_reason == "length":
        return ("max_tokens", None) if finished else ("end_turn", None)
    if finished.stop_sequence:
        return "stop_sequence", finished.stop_sequence
    return "end_turn", None


def _frame(kind: str, payload: dict[str, Any] | None = None, **fields: Any) -> bytes:
    body = payload if payload is not None else {"type": kind, **fields}
    return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


class MessageAnswer:
    def __init__(self, request: InferenceRequest, model: str) -> None:
        self.request = request
        self.model = model
        self.id = "msg_" + uuid.UUID(request.inference_id).hex

    def _usage(self, tally: GenerationTally) -> dict[str, int]:
        return {
            "input_tokens": tally.prompt_tokens,
            "output_tokens": tally.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def response(self, tally: GenerationTally) -> dict[str, Any]:
        reason, sequence = stop_reason(tally.finish.get(0))
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": tally.text(0)}],
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": self._usage(tally),
            "x_pioneer": {"inference_id": self.request.inference_id},
        }

    async def stream(
        self, events: AsyncIterator[Any], tally: GenerationTally
    ) -> AsyncIterator[bytes]:
        start = self.response(tally) | {"content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = self._usage(tally) | {"output_tokens": 0}
        yield _frame("message_start", {"type": "message_start", "message": start})
        block = {"type": "text", "text": ""}
        yield _frame(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        yield _frame("ping", {"type": "ping"})
        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                if isinstance(event, TokenDelta) and event.index == 0 and event.text:
                    delta = {"type": "text_delta", "text": event.text}
                    yield _frame(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                elif isinstance(event, ApiError):
                    yield _frame("error", to_error(event)[1])
                    return
        yield _frame("content_block_stop", {"type": "content_block_stop", "index": 0})
        reason, sequence = stop_reason(tally.finish.get(0))
        yield _frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": tally.completion_tokens},
                "x_pioneer": {"inference_id": self.request.inference_id},
            },
        )
        yield _frame("message_stop", {"type": "message_stop"})
