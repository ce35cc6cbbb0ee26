"""OpenAI Responses API: request -> canonical, the response object, and its event stream."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    InferenceRequest,
    SamplingOptions,
    TokenDelta,
    quoted,
)
from app.wire.openai_wire import ResponsesRequest, join_parts


def response_id(inference_id: str) -> str:
    return "resp_" + uuid.UUID(inference_id).hex


def inference_id_of(previous_response_id: str) -> str:
    try:
        return str(uuid.UUID(previous_response_id.removeprefix("resp_")))
    except ValueError:
        raise ApiException(
            ApiError.invalid(
                f"previous_response_id {quoted(previous_response_id)} is not a response id.",
                "previous_response_id",
                status=400,
            )
        ) from None


def to_internal(
    wire: ResponsesRequest,
    previous: dict[str, Any] | None,
    *,
    project_id: str | None,
    api_key_id: str | None,
) -> InferenceRequest:
    messages: list[dict[str, str]] = []
    if previous is not None:
        # Instructions are not carried over from a previous response (as OpenAI does).
        # History keeps a conversation's turns as JSON text (InferenceRecord.input).
        kept_as = (previous.get("metadata") or {}).get("input_kind")
        earlier = json.loads(previous["input"]) if kept_as == "messages" else []
        messages = [m for m in earlier if m["role"] != "system"]
        messages.append(
            {"role": "assistant", "content": (previous["output"] or {}).get("text", "")}
        )
    if wire.instructions:
        messages.insert(0, {"role": "system", "content": wire.instructions})
    if isinstance(wire.input, str):
        messages.append({"role": "user", "content": wire.input})
    else:
        for item in wire.input:
            role = "system" if item.role == "developer" else item.role
            messages.append({"role": role, "content": join_parts(item.content)})
    return InferenceRequest(
        model_id=wire.model,
        task="generate",
        messages=messages,
        sampling=SamplingOptions(
            max_tokens=wire.max_output_tokens, temperature=wire.temperature, top_p=wire.top_p
        ),
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="openai.responses",
    )


class ResponsesAnswer:
    def __init__(self, request: InferenceRequest, wire: ResponsesRequest) -> None:
        self.request = request
        self.wire = wire
        self.id = response_id(request.inference_id)
        self.message_id = "msg_" + uuid.UUID(request.inference_id).hex
        self.created = int(time.time())
        self.sequence = 0

    def _message(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }

    def response(self, tally: GenerationTally | None, status: str) -> dict[str, Any]:
        done = tally is not None and status != "in_progress"
        incomplete = done and tally.finish_reason(0) == "length"
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": "incomplete" if incomplete else status,
            "model": self.wire.model,
            "output": [self._message(tally.text(0), "completed")] if done else [],
            "instructions": self.wire.instructions,
            "max_output_tokens": self.wire.max_output_tokens,
            "temperature": self.wire.temperature,
            "top_p": self.wire.top_p,
            "previous_response_id": self.wire.previous_response_id,
            "store": self.wire.store,
            "metadata": self.wire.metadata or {},
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "text": {"format": {"type": "text"}},
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "usage": None,
            "x_pioneer": {"inference_id": self.request.inference_id},
        }
        if done:
            body["usage"] = {
                "input_tokens": tally.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": tally.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tally.prompt_tokens + tally.completion_tokens,
            }
        return body

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    async def stream(
        self, events: AsyncIterator[Any], tally: GenerationTally
    ) -> AsyncIterator[bytes]:
        where = {"item_id": self.message_id, "output_index": 0}
        empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield self._event("response.created", response=self.response(None, "in_progress"))
        yield self._event("response.in_progress", response=self.response(None, "in_progress"))
        yield self._event(
            "response.output_item.added", output_index=0, item=self._message("", "in_progress")
        )
        yield self._event("response.content_part.added", **where, content_index=0, part=empty_part)
        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                if isinstance(event, TokenDelta) and event.text:
                    yield self._event(
                        "response.output_text.delta",
                        **where,
                        content_index=0,
                        delta=event.text,
                        logprobs=[],
                    )
                elif isinstance(event, ApiError):
                    yield self._event(
                        "error", code=event.code, message=event.message, param=event.param
                    )
                    return
        text = tally.text(0)
        part = {**empty_part, "text": text}
        yield self._event(
            "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
        )
        yield self._event("response.content_part.done", **where, content_index=0, part=part)
        yield self._event(
            "response.output_item.done", output_index=0, item=self._message(text, "completed")
        )
        # Always response.completed (its status says "incomplete" when cut by
        # max_output_tokens): the openai SDK's stream helper waits for that event.
        yield self._event("response.completed", response=self.response(tally, "completed"))
