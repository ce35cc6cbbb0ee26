"""Tool calls through the official `openai` and `anthropic` SDKs, on the real vLLM engine.

Two models: the random tiny decoder (no tool parser: tool_choice required / named, which
vLLM's structured outputs hold to the tool's JSON schema) and the tiny agent decoder trained at
build time to call hermes-format tools (tool_choice auto, parsed by vLLM's hermes parser).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jsonschema
import openai
import pytest
from ray import serve

from tests.integration.canary import assert_kept_nowhere, strings_in_parquet
from tests.integration.conftest import APP_NAME

DECODER = "pioneer-test/llama-tiny-test"
AGENT = "pioneer-test/llama-tiny-agent"
CITY = {"type": "string", "maxLength": 16}
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": CITY, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME_PARAMETERS = {
    "type": "object",
    "properties": {"city": CITY},
    "required": ["city"],
    "additionalProperties": False,
}
SCHEMAS = {"get_weather": WEATHER_PARAMETERS, "get_time": TIME_PARAMETERS}
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {"name": name, "description": f"{name} of a city", "parameters": schema},
    }
    for name, schema in SCHEMAS.items()
]
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in CHAT_TOOLS]
CLAUDE_TOOLS = [
    {"name": name, "description": f"{name} of a city", "input_schema": schema}
    for name, schema in SCHEMAS.items()
]
# The agent model learnt get_weather(city) and get_time(city): its tools as it knows them.
AGENT_SCHEMAS = {name: TIME_PARAMETERS for name in SCHEMAS}
AGENT_TOOLS = [
    {
        "type": "function",
        "function": {"name": name, "description": f"{name} of a city", "parameters": schema},
    }
    for name, schema in AGENT_SCHEMAS.items()
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY: dict[str, Any] = {"temperature": 0.0, "max_tokens": 96}


def valid_calls(calls: list[Any], schemas: dict[str, dict]) -> list[tuple[str, dict]]:
    """(name, arguments) of each call, each checked against its tool's JSON schema."""
    found = []
    for call in calls:
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, schemas[call.function.name])
        found.append((call.function.name, arguments))
    return found


# ---- OpenAI chat completions -------------------------------------------------------------


def test_required_tool_call_validates_against_the_schema(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(
        model=DECODER, messages=ASK, tools=CHAT_TOOLS, tool_choice="required", **GREEDY
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and valid_calls(choice.message.tool_calls, SCHEMAS)
    assert all(call.id and call.type == "function" for call in choice.message.tool_calls)


def test_named_tool_call(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(
        model=DECODER,
        messages=ASK,
        tools=CHAT_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        **GREEDY,
    )
    calls = valid_calls(answer.choices[0].message.tool_calls or [], SCHEMAS)
    assert [name for name, _ in calls] == ["get_time"]


def test_parallel_false_gives_one_call(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(
        model=DECODER,
        messages=ASK,
        tools=CHAT_TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        **GREEDY,
    )
    assert len(answer.choices[0].message.tool_calls or []) == 1


def test_streamed_tool_call_accumulates_in_the_sdk(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(
        model=DECODER, messages=ASK, tools=CHAT_TOOLS, tool_choice="required", **GREEDY
    )
    with sdk.chat.completions.stream(
        model=DECODER, messages=ASK, tools=CHAT_TOOLS, tool_choice="required", **GREEDY
    ) as stream:
        pieces = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls or []
    assert pieces and valid_calls(streamed, SCHEMAS)
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        (c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_auto_calls_the_tool_the_question_needs(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(model=AGENT, messages=ASK, tools=AGENT_TOOLS, **GREEDY)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert valid_calls(choice.message.tool_calls, AGENT_SCHEMAS) == [
        ("get_weather", {"city": "Paris"})
    ]


def test_auto_parallel_calls(sdk: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "What is the weather in Paris and Rome?"}]
    answer = sdk.chat.completions.create(
        model=AGENT, messages=question, tools=AGENT_TOOLS, **GREEDY
    )
    calls = valid_calls(answer.choices[0].message.tool_calls or [], AGENT_SCHEMAS)
    assert calls == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    ids = [call.id for call in answer.choices[0].message.tool_calls]
    assert len(set(ids)) == 2


def test_auto_stream_equals_the_whole_answer(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model=AGENT, messages=ASK, tools=AGENT_TOOLS, **GREEDY)
    with sdk.chat.completions.stream(
        model=AGENT, messages=ASK, tools=AGENT_TOOLS, **GREEDY
    ) as stream:
        final = stream.get_final_completion()
    expected = [
        (c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls
    ]
    got = [(c.function.name, c.function.arguments) for c in final.choices[0].message.tool_calls]
    assert got == expected


def test_round_trip_with_the_tool_result(sdk: openai.OpenAI, client: httpx.Client) -> None:
    first = sdk.chat.completions.create(model=AGENT, messages=ASK, tools=AGENT_TOOLS, **GREEDY)
    call = first.choices[0].message.tool_calls[0]
    turns = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "sunny"}'},
    ]
    second = sdk.chat.completions.create(model=AGENT, messages=turns, tools=AGENT_TOOLS, **GREEDY)
    choice = second.choices[0]
    assert choice.finish_reason == "stop" and choice.message.content
    assert not choice.message.tool_calls
    # stored in history: the call made, and the conversation that answered it
    made = client.get(f"/inferences/{first.model_extra['x_pioneer']['inference_id']}").json()
    assert made["output"]["tool_calls"][0]["function"]["name"] == "get_weather"
    answered = client.get(f"/inferences/{second.model_extra['x_pioneer']['inference_id']}")
    conversation = json.loads(answered.json()["input"])
    assert conversation[-1] == {
        "role": "tool",
        "content": turns[-1]["content"],
        "tool_call_id": call.id,
    }
    assert conversation[-2]["tool_calls"][0]["id"] == call.id


def test_auto_needs_a_tool_parser(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=DECODER, messages=ASK, tools=CHAT_TOOLS, **GREEDY)
    assert refused.value.body["param"] == "tool_choice"


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_choice": "required"},  # no tools
        {"tools": CHAT_TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tools": CHAT_TOOLS + CHAT_TOOLS[:1], "tool_choice": "required"},
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
        {"messages": [{"role": "tool", "content": "x"}]},  # no tool_call_id
    ],
    ids=["choice-without-tools", "unknown-name", "duplicate-names", "bad-name", "tool-no-id"],
)
def test_bad_tool_requests_are_400(sdk: openai.OpenAI, extra: dict[str, Any]) -> None:
    body = {"model": DECODER, "messages": ASK, **GREEDY, **extra}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(**body)
    assert refused.value.body["type"] == "invalid_request_error"


def test_store_false_keeps_no_tool_payload(
    sdk: openai.OpenAI, client: httpx.Client, history_root: Path
) -> None:
    def conversation(secret: str) -> list[dict[str, Any]]:
        call = {"name": "get_weather", "arguments": json.dumps({"city": secret})}
        return [
            *ASK,
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": call}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"sunny {secret}"},
        ]

    canary, control = f"TOOLCANARY{uuid.uuid4().hex}", f"TOOLCONTROL{uuid.uuid4().hex}"
    body: dict[str, Any] = {"model": AGENT, "tools": AGENT_TOOLS, **GREEDY}
    answer = sdk.chat.completions.create(messages=conversation(canary), store=False, **body)
    with sdk.chat.completions.create(
        messages=conversation(canary), store=False, stream=True, **body
    ) as stream:
        assert [c for c in stream if c.choices]
    sdk.chat.completions.create(messages=conversation(control), **body)
    inference_id = answer.model_extra["x_pioneer"]["inference_id"]
    assert client.get(f"/inferences/{inference_id}").status_code == 404
    serve.get_deployment_handle("Recorder", APP_NAME).flush.remote().result()
    assert_kept_nowhere(canary, history_root)
    assert control in strings_in_parquet(history_root)  # the same search finds a kept one


# ---- OpenAI Responses ------------------------------------------------------------------------


def test_responses_function_call_round_trip(sdk: openai.OpenAI) -> None:
    tools = [{"type": "function", **t["function"]} for t in AGENT_TOOLS]
    first = sdk.responses.create(
        model=AGENT,
        input="What is the weather in Paris?",
        tools=tools,
        max_output_tokens=96,
        temperature=0.0,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    with sdk.responses.stream(
        model=AGENT,
        input="What is the weather in Paris?",
        tools=tools,
        max_output_tokens=96,
        temperature=0.0,
    ) as stream:
        streamed = stream.get_final_response()
    assert [(i.name, i.arguments) for i in streamed.output if i.type == "function_call"] == [
        (c.name, c.arguments) for c in calls
    ]
    second = sdk.responses.create(
        model=AGENT,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            *[c.model_dump(exclude_none=True) for c in calls],
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"},
        ],
        tools=tools,
        max_output_tokens=96,
        temperature=0.0,
    )
    assert second.output_text and not [i for i in second.output if i.type == "function_call"]


def test_responses_required_tool(sdk: openai.OpenAI) -> None:
    answer = sdk.responses.create(
        model=DECODER,
        input="What is the weather in Paris?",
        tools=RESPONSES_TOOLS,
        tool_choice="required",
        max_output_tokens=96,
        temperature=0.0,
    )
    calls = [item for item in answer.output if item.type == "function_call"]
    assert calls
    for call in calls:
        jsonschema.validate(json.loads(call.arguments), SCHEMAS[call.name])


# ---- Anthropic Messages ----------------------------------------------------------------------


def test_anthropic_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    tools = [{**t, "input_schema": TIME_PARAMETERS} for t in CLAUDE_TOOLS]
    greedy = {"extra_body": {"temperature": 0.0}}
    first = claude.messages.create(model=AGENT, max_tokens=96, messages=ASK, tools=tools, **greedy)
    uses = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use"
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"})]
    with claude.messages.stream(
        model=AGENT, max_tokens=96, messages=ASK, tools=tools, **greedy
    ) as stream:
        streamed = stream.get_final_message()
    assert [(b.name, b.input) for b in streamed.content if b.type == "tool_use"] == [
        (u.name, u.input) for u in uses
    ]
    second = claude.messages.create(
        model=AGENT,
        max_tokens=96,
        tools=tools,
        **greedy,
        messages=[
            *ASK,
            {"role": "assistant", "content": [u.model_dump() for u in uses]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"


@pytest.mark.parametrize(
    "choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}], ids=["any", "named"]
)
def test_anthropic_forced_tool_validates(claude: anthropic.Anthropic, choice: dict) -> None:
    message = claude.messages.create(
        model=DECODER,
        max_tokens=96,
        messages=ASK,
        tools=CLAUDE_TOOLS,
        tool_choice=choice,
        extra_body={"temperature": 0.0},  # the SDK has no sampling arguments
    )
    uses = [block for block in message.content if block.type == "tool_use"]
    assert uses
    for use in uses:
        jsonschema.validate(use.input, SCHEMAS[use.name])
    if choice["type"] == "tool":
        assert [use.name for use in uses] == ["get_weather"]


def test_anthropic_streamed_input_json_accumulates(claude: anthropic.Anthropic) -> None:
    body: dict[str, Any] = {
        "model": DECODER,
        "max_tokens": 96,
        "extra_body": {"temperature": 0.0},
        "messages": ASK,
        "tools": CLAUDE_TOOLS,
        "tool_choice": {"type": "any"},
    }
    whole = claude.messages.create(**body)
    with claude.messages.stream(**body) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [
        (b.name, b.input) for b in whole.content if b.type == "tool_use"
    ]


def test_anthropic_auto_needs_a_tool_parser(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model=DECODER, max_tokens=16, messages=ASK, tools=CLAUDE_TOOLS)
    assert refused.value.body["type"] == "error"
