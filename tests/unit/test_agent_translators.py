"""Tools and reasoning in each format's translator, without a server: canonical turns in,
and answers out whose streams the official SDKs' own accumulators turn into the same objects
as the whole answers (the engine events here are hand-made; the real engine is tested in
tests/integration/test_agent_*.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from openai import omit
from openai._models import construct_type_unchecked
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from app.generation import GenerationTally
from app.protocol import (
    ApiException,
    ChoiceFinished,
    GenerationStarted,
    ReasoningDelta,
    TokenDelta,
    ToolCallDelta,
)
from app.translators import anthropic_format, openai_format, openai_responses
from app.wire.anthropic_wire import MessagesRequest
from app.wire.openai_wire import ChatCompletionRequest, ResponsesRequest

REQUEST_ID = "6f1c0e8e-3b0a-4a57-9a43-1f0a3f1d2c11"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
# what an engine step sequence looks like: thinking, a little text, two calls in pieces
EVENTS = [
    GenerationStarted(prompt_tokens=40, prompt="", cached_tokens=32),
    ReasoningDelta(0, "the user asks "),
    TokenDelta(0, "", 3),
    ReasoningDelta(0, "about two cities"),
    TokenDelta(0, "Checking.", 4),
    ToolCallDelta(0, 0, id="call_a", name="get_weather"),
    ToolCallDelta(0, 0, arguments='{"city": '),
    ToolCallDelta(0, 0, arguments='"Paris"}'),
    ToolCallDelta(0, 1, id="call_b", name="get_weather", arguments='{"city": "Rome"}'),
    TokenDelta(0, "", 9),
    ChoiceFinished(0, "tool_calls", reasoning_tokens=3),
]


def run(answer_stream: Any, tally: GenerationTally) -> list[bytes]:
    async def events() -> AsyncIterator[Any]:
        for event in EVENTS[1:]:
            tally.add(event)
            yield event

    async def collect() -> list[bytes]:
        return [frame async for frame in answer_stream(events(), tally)]

    tally.add(EVENTS[0])
    return asyncio.run(collect())


def whole() -> GenerationTally:
    tally = GenerationTally()
    for event in EVENTS:
        tally.add(event)
    return tally


def data(frames: list[bytes]) -> list[dict[str, Any]]:
    payloads = []
    for frame in frames:
        line = [x for x in frame.decode().splitlines() if x.startswith("data: ")][0][6:]
        if line != "[DONE]":
            payloads.append(json.loads(line))
    return payloads


def test_chat_messages_and_tools_become_canonical() -> None:
    wire = ChatCompletionRequest(
        model="m",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "sun"}]},
        ],
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        reasoning_effort="low",
    )
    request = openai_format.chat_to_internal(wire, project_id=None, api_key_id=None)
    assert request.messages == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "content": "sun", "tool_call_id": "c1"},
    ]
    assert request.tools is not None
    assert (request.tools.choice, request.tools.name, request.tools.parallel) == (
        "named",
        "get_weather",
        False,
    )
    assert request.reasoning and request.show_reasoning


@pytest.mark.parametrize(
    "choice",
    ["required", {"type": "function", "function": {"name": "other"}}],
)
def test_tool_choice_must_match_the_tools(choice: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    if choice != "required":
        body["tools"] = [TOOL]  # offered, but not the one named
    wire = ChatCompletionRequest.model_validate(body)
    with pytest.raises(ApiException):
        openai_format.chat_to_internal(wire, project_id=None, api_key_id=None)


def test_chat_stream_accumulates_in_the_openai_sdk() -> None:
    request = openai_format.chat_to_internal(
        ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}]),
        project_id=None,
        api_key_id=None,
    )
    request.inference_id = REQUEST_ID
    answer = openai_format.ChatAnswer(request, "m")
    frames = run(lambda e, t: answer.stream(e, t, True), GenerationTally())
    state = ChatCompletionStreamState()
    for payload in data(frames):
        state.handle_chunk(construct_type_unchecked(type_=ChatCompletionChunk, value=payload))
    streamed = state.get_final_completion().choices[0]
    direct = openai_format.ChatAnswer(request, "m").response(whole())["choices"][0]
    assert streamed.message.content == direct["message"]["content"] == "Checking."
    assert (
        [(c.id, c.function.name, c.function.arguments) for c in streamed.message.tool_calls]
        == [
            (c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in direct["message"]["tool_calls"]
        ]
        == [
            ("call_a", "get_weather", '{"city": "Paris"}'),
            ("call_b", "get_weather", '{"city": "Rome"}'),
        ]
    )
    assert direct["message"]["reasoning_content"] == "the user asks about two cities"
    assert streamed.finish_reason == direct["finish_reason"] == "tool_calls"
    usage = data(frames)[-1]["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 32
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 3


def test_responses_stream_accumulates_in_the_openai_sdk() -> None:
    wire = ResponsesRequest(
        model="m", input="x", tools=[{"type": "function", "name": "get_weather"}]
    )
    request = openai_responses.to_internal(wire, None, project_id=None, api_key_id=None)
    request.reasoning = True
    request.inference_id = REQUEST_ID
    answer = openai_responses.ResponsesAnswer(request, wire)
    frames = run(answer.stream, GenerationTally())
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for payload in data(frames):
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=payload))
    final = data(frames)[-1]["response"]
    direct = openai_responses.ResponsesAnswer(request, wire).response(whole(), "completed")
    assert (
        [i["type"] for i in final["output"]]
        == [i["type"] for i in direct["output"]]
        == [
            "reasoning",
            "message",
            "function_call",
            "function_call",
        ]
    )
    assert final["output"] == direct["output"]
    assert json.loads(direct["output"][3]["arguments"]) == {"city": "Rome"}
    assert direct["usage"]["input_tokens_details"]["cached_tokens"] == 32


def test_responses_function_items_become_turns() -> None:
    wire = ResponsesRequest(
        model="m",
        input=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": "sun"},
            {"type": "function_call_output", "call_id": "b", "output": "rain"},
        ],
    )
    request = openai_responses.to_internal(wire, None, project_id=None, api_key_id=None)
    assert [m["role"] for m in request.messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in request.messages[1]["tool_calls"]] == ["a", "b"]


def test_anthropic_blocks_become_turns() -> None:
    wire = MessagesRequest(
        model="m",
        max_tokens=8,
        system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "text", "text": "and now?"},
                ],
            },
        ],
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 4},
    )
    request = anthropic_format.to_internal(wire, project_id=None, api_key_id=None)
    assert request.messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "t1"},
        {"role": "user", "content": "and now?"},
    ]
    assert request.tools is not None
    assert (request.tools.choice, request.tools.parallel) == ("required", False)
    assert request.reasoning


def test_anthropic_stream_accumulates_in_the_anthropic_sdk() -> None:
    wire = MessagesRequest(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    request = anthropic_format.to_internal(wire, project_id=None, api_key_id=None)
    request.inference_id = REQUEST_ID
    answer = anthropic_format.MessageAnswer(request, "m")
    frames = run(answer.stream, GenerationTally())
    snapshot, buffers = None, {}
    for payload in data(frames):
        event = construct_type_unchecked(type_=RawMessageStreamEvent, value=payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    direct = anthropic_format.MessageAnswer(request, "m").response(whole())
    assert (
        [b.type for b in snapshot.content]
        == [b["type"] for b in direct["content"]]
        == [
            "thinking",
            "text",
            "tool_use",
            "tool_use",
        ]
    )
    assert [b.input for b in snapshot.content if b.type == "tool_use"] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert direct["stop_reason"] == "tool_use"
    assert direct["usage"]["cache_read_input_tokens"] == 32
    assert direct["usage"]["input_tokens"] == 8
