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
    ToolSpec,
    ToolUse,
    quoted,
)
from app.translators.output_parts import Part, parts_of, piece_of
from app.translators.tools import tool_use
from app.wire.openai_wire import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ResponseInputItem,
    ResponsesNamedChoice,
    ResponsesRequest,
    join_parts,
)


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


def _earlier_turns(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """A previous response's conversation and its answer (text and tool calls), without its
    instructions: those are not carried over (as OpenAI does). History keeps a conversation's
    turns as JSON text (InferenceRecord.input)."""
    kept_as = (previous.get("metadata") or {}).get("input_kind")
    earlier = json.loads(previous["input"]) if kept_as == "messages" else []
    turns = [m for m in earlier if m["role"] != "system"]
    output = previous.get("output") or {}
    answer: dict[str, Any] = {"role": "assistant", "content": output.get("text", "")}
    if output.get("tool_calls"):
        answer["tool_calls"] = output["tool_calls"]
    turns.append(answer)
    return turns


def _input_turns(items: list[Any]) -> list[dict[str, Any]]:
    """Input items as chat turns: consecutive function calls join one assistant turn, as a
    model that called several tools at once produced them."""
    turns: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = turns[-1] if turns else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                turns.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            output = item.output if isinstance(item.output, str) else join_parts(item.output)
            turns.append({"role": "tool", "content": output, "tool_call_id": item.call_id})
        elif isinstance(item, ResponseInputItem):
            role = "system" if item.role == "developer" else item.role
            turns.append({"role": role, "content": join_parts(item.content)})
        # reasoning items: an earlier answer's thinking is not fed back (see ReasoningItem)
    return turns


def _tools(wire: ResponsesRequest) -> ToolUse | None:
    specs = [ToolSpec(t.name, t.description, t.parameters) for t in wire.tools or []]
    choice = wire.tool_choice
    if isinstance(choice, ResponsesNamedChoice):
        return tool_use(specs, "named", name=choice.name, parallel=wire.parallel_tool_calls)
    return tool_use(specs, choice, parallel=wire.parallel_tool_calls)


def to_internal(
    wire: ResponsesRequest,
    previous: dict[str, Any] | None,
    *,
    project_id: str | None,
    api_key_id: str | None,
) -> InferenceRequest:
    messages: list[dict[str, Any]] = _earlier_turns(previous) if previous is not None else []
    if wire.instructions:
        messages.insert(0, {"role": "system", "content": wire.instructions})
    if isinstance(wire.input, str):
        messages.append({"role": "user", "content": wire.input})
    else:
        messages.extend(_input_turns(wire.input))
    effort = wire.reasoning.effort if wire.reasoning else None
    return InferenceRequest(
        model_id=wire.model,
        task="generate",
        messages=messages,
        sampling=SamplingOptions(
            max_tokens=wire.max_output_tokens, temperature=wire.temperature, top_p=wire.top_p
        ),
        tools=_tools(wire),
        reasoning=effort not in (None, "none"),
        stream=wire.stream,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="openai.responses",
    )


class ResponsesAnswer:
    """The response object, and its event stream. Output items come in the order the model
    made them: its reasoning, its message, its function calls; the stream opens each item
    when its first piece arrives and closes it when the next kind begins."""

    def __init__(self, request: InferenceRequest, wire: ResponsesRequest) -> None:
        self.request = request
        self.wire = wire
        self.id = response_id(request.inference_id)
        hex_id = uuid.UUID(request.inference_id).hex
        self.message_id = "msg_" + hex_id
        self.reasoning_id = "rs_" + hex_id
        self.created = int(time.time())
        self.sequence = 0

    # ---- items -------------------------------------------------------------------------

    def _message(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }

    def _reasoning(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "reasoning",
            "id": self.reasoning_id,
            "summary": [],
            "content": [{"type": "reasoning_text", "text": text}] if text else [],
            "status": status,
        }

    def _call(self, tally: GenerationTally, n: int, status: str) -> dict[str, Any]:
        call = tally.tool_calls(0)[n]
        return {
            "type": "function_call",
            "id": f"fc_{self.message_id[4:]}_{n}",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments if status == "completed" else "",
            "status": status,
        }

    def _item(self, tally: GenerationTally, key: Part, status: str) -> dict[str, Any]:
        kind, n = key
        if kind == "reasoning":
            return self._reasoning(tally.reasoning_text(0) or "", status)
        if kind == "text":
            return self._message(tally.text(0), status)
        return self._call(tally, n, status)

    # ---- the response object -----------------------------------------------------------

    def response(
        self,
        tally: GenerationTally | None,
        status: str,
        keys: list[Part] | None = None,
    ) -> dict[str, Any]:
        done = tally is not None and status != "in_progress"
        incomplete = done and tally.finish_reason(0) == "length"
        output = []
        if done:
            output = [
                self._item(tally, key, "completed")
                for key in keys or parts_of(tally, self.request.show_reasoning)
            ]
        tools = self.wire.tools or []
        choice = self.wire.tool_choice
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": "incomplete" if incomplete else status,
            "model": self.wire.model,
            "output": output,
            "instructions": self.wire.instructions,
            "max_output_tokens": self.wire.max_output_tokens,
            "temperature": self.wire.temperature,
            "top_p": self.wire.top_p,
            "previous_response_id": self.wire.previous_response_id,
            "store": self.wire.store,
            "metadata": self.wire.metadata or {},
            "parallel_tool_calls": self.wire.parallel_tool_calls is not False and bool(tools),
            "tool_choice": choice.model_dump()
            if hasattr(choice, "model_dump")
            else choice or "auto",
            "tools": [t.model_dump(exclude_none=True) for t in tools],
            "reasoning": {"effort": self.wire.reasoning.effort, "summary": None}
            if self.wire.reasoning
            else None,
            "text": {"format": {"type": "text"}},
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "usage": None,
            "x_pioneer": {"inference_id": self.request.inference_id},
        }
        if done:
            body["usage"] = {
                "input_tokens": tally.prompt_tokens,
                "input_tokens_details": {"cached_tokens": tally.cached_tokens},
                "output_tokens": tally.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": tally.reasoning_tokens},
                "total_tokens": tally.prompt_tokens + tally.completion_tokens,
            }
        return body

    # ---- the stream ----------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    def _open(self, tally: GenerationTally, key: Part, index: int) -> list[bytes]:
        frames = [
            self._event(
                "response.output_item.added",
                output_index=index,
                item=self._item(tally, key, "in_progress"),
            )
        ]
        if key[0] == "text":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
            frames.append(self._event("response.content_part.added", **where, part=part))
        return frames

    def _piece(self, key: Part, index: int, text: str) -> bytes:
        kind, n = key
        if kind == "reasoning":
            where = {"item_id": self.reasoning_id, "output_index": index, "content_index": 0}
            return self._event("response.reasoning_text.delta", **where, delta=text)
        if kind == "text":
            where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
            return self._event("response.output_text.delta", **where, delta=text, logprobs=[])
        item_id = f"fc_{self.message_id[4:]}_{n}"
        return self._event(
            "response.function_call_arguments.delta",
            item_id=item_id,
            output_index=index,
            delta=text,
        )

    def _close(self, tally: GenerationTally, key: Part, index: int) -> list[bytes]:
        kind, n = key
        item = self._item(tally, key, "completed")
        frames = []
        if kind == "reasoning":
            where = {"item_id": self.reasoning_id, "output_index": index, "content_index": 0}
            text = tally.reasoning_text(0) or ""
            frames.append(self._event("response.reasoning_text.done", **where, text=text))
        elif kind == "text":
            where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
            text = tally.text(0)
            part = item["content"][0]
            frames.append(self._event("response.output_text.done", **where, text=text, logprobs=[]))
            frames.append(self._event("response.content_part.done", **where, part=part))
        else:
            frames.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        frames.append(self._event("response.output_item.done", output_index=index, item=item))
        return frames

    async def stream(
        self, events: AsyncIterator[Any], tally: GenerationTally
    ) -> AsyncIterator[bytes]:
        yield self._event("response.created", response=self.response(None, "in_progress"))
        yield self._event("response.in_progress", response=self.response(None, "in_progress"))
        opened: list[Part] = []
        async with aclosing(events) as source:  # closing us closes the source
            async for event in source:
                if isinstance(event, ApiError):
                    yield self._event(
                        "error", code=event.code, message=event.message, param=event.param
                    )
                    return
                found = piece_of(event)
                if found is None:
                    continue
                key, text = found
                if not opened or opened[-1] != key:
                    if opened:
                        for frame in self._close(tally, opened[-1], len(opened) - 1):
                            yield frame
                    opened.append(key)
                    for frame in self._open(tally, key, len(opened) - 1):
                        yield frame
                if text:
                    yield self._piece(key, len(opened) - 1, text)
        if not opened:  # an empty answer is still one (empty) message
            opened.append(("text", 0))
            for frame in self._open(tally, opened[-1], 0):
                yield frame
        for frame in self._close(tally, opened[-1], len(opened) - 1):
            yield frame
        # Always response.completed (its status says "incomplete" when cut by
        # max_output_tokens): the openai SDK's stream helper waits for that event.
        yield self._event("response.completed", response=self.response(tally, "completed", opened))
