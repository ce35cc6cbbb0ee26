"""Anthropic-compatible format: /v1/messages to canonical, the message, its event stream
(`event: X` / `data: {...}` framing, Anthropic's exact order), and the error body."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ChoiceFinished,
    InferenceRequest,
    SamplingOptions,
    ToolSpec,
    ToolUse,
)
from app.translators.output_parts import Part, parts_of, piece_of
from app.translators.tools import arguments_object, tool_use
from app.wire.anthropic_wire import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    ToolResultBlock,
    ToolUseBlock,
    join_blocks,
)

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


def _turns(message: Message) -> list[dict[str, Any]]:
    """One Anthropic message as canonical turns: a user message's tool results become tool
    turns (they come first, as Anthropic requires), an assistant's tool_use blocks its calls."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    turns: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            result = join_blocks(block.content)
            turns.append({"role": "tool", "content": result, "tool_call_id": block.tool_use_id})
    text = join_blocks(message.content)
    calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": json.dumps(block.input)},
        }
        for block in message.content
        if isinstance(block, ToolUseBlock)
    ]
    if message.role == "assistant":
        turn: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            turn["tool_calls"] = calls
        turns.append(turn)
    elif text or not turns:
        turns.append({"role": "user", "content": text})
    return turns


def messages_of(wire: MessagesRequest | CountTokensRequest) -> list[dict[str, Any]]:
    turns = [turn for message in wire.messages for turn in _turns(message)]
    if wire.system:
        turns.insert(0, {"role": "system", "content": join_blocks(wire.system)})
    return turns


_CHOICES = {"auto": "auto", "any": "required", "tool": "named", "none": "none"}


def tools_of(wire: MessagesRequest | CountTokensRequest) -> ToolUse | None:
    specs = [ToolSpec(t.name, t.description, t.input_schema) for t in wire.tools or []]
    choice = wire.tool_choice
    if choice is None:
        return tool_use(specs, None)
    parallel = (
        None if choice.disable_parallel_tool_use is None else not choice.disable_parallel_tool_use
    )
    return tool_use(specs, _CHOICES[choice.type], name=choice.name, parallel=parallel)


def thinking_of(wire: MessagesRequest | CountTokensRequest) -> tuple[bool, bool]:
    """(think, show the thinking): as Anthropic, only when asked."""
    if wire.thinking is None:
        return False, True
    return wire.thinking.type != "disabled", wire.thinking.display != "omitted"


def to_internal(
    wire: MessagesRequest, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    reasoning, show_reasoning = thinking_of(wire)
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
        tools=tools_of(wire),
        reasoning=reasoning,
        show_reasoning=show_reasoning,
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="anthropic.messages",
    )


def stop_reason(finished: ChoiceFinished | None) -> tuple[str, str | None]:
    if finished is not None and finished.finish_reason == "tool_calls":
        return "tool_use", None
    if finished is None or finished.finish_reason == "length":
        return ("max_tokens", None) if finished else ("end_turn", None)
    if finished.stop_sequence:
        return "stop_sequence", finished.stop_sequence
    return "end_turn", None


def _frame(kind: str, payload: dict[str, Any] | None = None, **fields: Any) -> bytes:
    body = payload if payload is not None else {"type": kind, **fields}
    return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def _delta(part: Part, text: str) -> dict[str, Any]:
    kind = part[0]
    if kind == "reasoning":
        return {"type": "thinking_delta", "thinking": text}
    if kind == "text":
        return {"type": "text_delta", "text": text}
    return {"type": "input_json_delta", "partial_json": text}


class MessageAnswer:
    """The message, and its event stream. Content blocks come in the order the model made
    them: thinking, text, tool_use; the stream opens each block when its first piece arrives
    and closes it when the next kind begins."""

    def __init__(self, request: InferenceRequest, model: str) -> None:
        self.request = request
        self.model = model
        self.id = "msg_" + uuid.UUID(request.inference_id).hex

    def _usage(self, tally: GenerationTally) -> dict[str, int]:
        """Anthropic's split: input_tokens are the prompt tokens not read from the cache.
        vLLM caches every prompt automatically and reports reads only, so creation is 0
        (writes bill at the input rate, prompt-caching.mdx)."""
        return {
            "input_tokens": tally.uncached_tokens,
            "output_tokens": tally.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": tally.cached_tokens,
        }

    def _block(self, tally: GenerationTally, part: Part, done: bool) -> dict[str, Any]:
        kind, n = part
        if kind == "reasoning":
            thinking = tally.reasoning_text(0) or "" if done else ""
            return {"type": "thinking", "thinking": thinking, "signature": ""}
        if kind == "text":
            return {"type": "text", "text": tally.text(0) if done else ""}
        call = tally.tool_calls(0)[n]
        arguments = arguments_object(call.arguments) if done else {}
        return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}

    def response(self, tally: GenerationTally) -> dict[str, Any]:
        reason, sequence = stop_reason(tally.finish.get(0))
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [
                self._block(tally, part, True)
                for part in parts_of(tally, self.request.show_reasoning)
            ],
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
        opened: list[Part] = []

        def open_block(part: Part) -> list[bytes]:
            frames = []
            if opened:
                frames.append(_frame("content_block_stop", index=len(opened) - 1))
            opened.append(part)
            block = self._block(tally, part, False)
            frames.append(_frame("content_block_start", index=len(opened) - 1, content_block=block))
            if len(opened) == 1:
                frames.append(_frame("ping"))
            return frames

        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                if isinstance(event, ApiError):
                    yield _frame("error", to_error(event)[1])
                    return
                found = piece_of(event)
                if found is None:
                    continue
                part, text = found
                if not opened or opened[-1] != part:
                    for frame in open_block(part):
                        yield frame
                if text:
                    delta = _delta(part, text)
                    yield _frame("content_block_delta", index=len(opened) - 1, delta=delta)
        if not opened:  # an empty answer is still one (empty) text block
            for frame in open_block(("text", 0)):
                yield frame
        yield _frame("content_block_stop", index=len(opened) - 1)
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
