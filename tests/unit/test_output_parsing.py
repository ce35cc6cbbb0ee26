"""Per-choice output parsing (app/engines/output_parsing.py) on hand-made engine steps.

The tiny test tokenizer, extended with <think>, </think>, <tool_call> and </tool_call>, stands
in for a reasoning, tool-calling model; vLLM's own parsers (deepseek_r1, hermes, its
required-array scanner) do the recognising. Each case cuts the text at awkward places and
checks what the events add up to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.engines.output_parsing import ChoiceParser, OutputParsing, Step
from app.engines.vllm_tools import check_tools, tool_call_schema
from app.protocol import ApiException, ToolCallDelta, ToolSpec, ToolUse
from tests.conftest import MODELS

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
)
CLOCK = ToolSpec("get_time", None, None)
PROMPT_OPEN = "<|user|>hi<|end|><|assistant|><think>"  # a template that opens the thinking


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer
    from vllm.tokenizers.hf import get_cached_tokenizer

    tok = AutoTokenizer.from_pretrained(MODELS / "llama-tiny-test")
    tok.add_tokens(["<think>", "</think>", "<tool_call>", "</tool_call>"])
    return get_cached_tokenizer(tok)


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def parser(
    tokenizer: Any,
    *,
    reasoning: bool = False,
    tools: ToolUse | None = None,
    prompt: str = "<|user|>hi<|end|><|assistant|>",
) -> ChoiceParser:
    parsing = OutputParsing(
        tokenizer,
        reasoning_parser="deepseek_r1" if reasoning else None,
        tools=tools,
        tool_parser="hermes",
    )
    return parsing.choice(0, ids(tokenizer, prompt))


def run(tokenizer: Any, choice: ChoiceParser, pieces: list[str]) -> list[Step]:
    steps = [choice.feed(piece, ids(tokenizer, piece)) for piece in pieces]
    steps.append(choice.finish())
    return steps


def calls_of(steps: list[Step]) -> list[dict[str, Any]]:
    """The calls the pieces add up to; a call's first piece must carry its id and name."""
    calls: list[dict[str, Any]] = []
    for piece in (c for step in steps for c in step.calls):
        assert isinstance(piece, ToolCallDelta) and piece.index == 0
        if piece.call == len(calls):
            assert piece.id and piece.id.startswith("call_") and len(piece.id) == 29
            assert piece.name
            calls.append({"id": piece.id, "name": piece.name, "arguments": piece.arguments})
        else:
            assert piece.id is None and piece.name is None
            calls[piece.call]["arguments"] += piece.arguments
    return calls


def text_of(steps: list[Step], part: str) -> str:
    return "".join(getattr(step, part) for step in steps)


# ---- reasoning ---------------------------------------------------------------------------


def test_reasoning_opened_by_the_prompt_split_across_steps(tokenizer: Any) -> None:
    choice = parser(tokenizer, reasoning=True, prompt=PROMPT_OPEN)
    steps = run(tokenizer, choice, ["I should", " greet", " them.", "</think>Hello", " there"])
    assert text_of(steps, "reasoning") == "I should greet them."
    assert text_of(steps, "content") == "Hello there"
    assert choice.reasoning_tokens() == len(ids(tokenizer, "I should greet them."))
    assert choice.finish_reason("stop") == "stop"


def test_reasoning_the_model_opens_and_an_end_token_alone(tokenizer: Any) -> None:
    choice = parser(tokenizer, reasoning=True)
    steps = run(tokenizer, choice, ["<think>", "Hmm", ", fine", "</think>", "\n\nOK", "."])
    assert text_of(steps, "reasoning") == "Hmm, fine"
    assert text_of(steps, "content") == "\n\nOK."
    assert choice.reasoning_tokens() == len(ids(tokenizer, "Hmm, fine"))


def test_reasoning_closed_by_the_prompt_is_all_answer(tokenizer: Any) -> None:
    choice = parser(tokenizer, reasoning=True, prompt=PROMPT_OPEN + "\n\n</think>\n\n")
    steps = run(tokenizer, choice, ["Hello", " there"])
    assert text_of(steps, "reasoning") == "" and text_of(steps, "content") == "Hello there"
    assert choice.reasoning_tokens() == 0


def test_reasoning_cut_off_by_length_stays_reasoning(tokenizer: Any) -> None:
    choice = parser(tokenizer, reasoning=True, prompt=PROMPT_OPEN)
    steps = run(tokenizer, choice, ["Still", " thinking"])
    assert text_of(steps, "reasoning") == "Still thinking" and text_of(steps, "content") == ""
    assert choice.finish_reason("length") == "length"


# ---- tool_choice auto (hermes) -----------------------------------------------------------

ONE_CALL = [
    "Sure. ",
    "<tool_call>",
    '\n{"na',
    'me": "get_w',
    'eather", "argu',
    'ments": {"ci',
    'ty": "Par',
    'is", "days": 3',
    "}}\n",
    "</tool_call>",
]


def test_one_auto_call_split_at_awkward_places(tokenizer: Any) -> None:
    tools = ToolUse((WEATHER, CLOCK), "auto")
    choice = parser(tokenizer, tools=tools)
    steps = run(tokenizer, choice, ONE_CALL)
    assert text_of(steps, "content") == "Sure. "
    [call] = calls_of(steps)
    assert call["name"] == "get_weather"
    assert call["arguments"] == '{"city": "Paris", "days": 3}'  # the final parse's JSON
    assert choice.finish_reason("stop") == "tool_calls"
    # streaming the same text in one piece gives the same call
    whole = run(tokenizer, parser(tokenizer, tools=tools), ["".join(ONE_CALL)])
    assert [(c["name"], c["arguments"]) for c in calls_of(whole)] == [
        (call["name"], call["arguments"])
    ]


def test_two_auto_calls_after_reasoning(tokenizer: Any) -> None:
    tools = ToolUse((WEATHER, CLOCK), "auto")
    choice = parser(tokenizer, reasoning=True, tools=tools, prompt=PROMPT_OPEN)
    pieces = [
        "Two",
        " calls.",
        "</think>\n\n<tool_call>",
        '\n{"name": "get_weather", "arguments": {"city": "Oslo", ',
        '"days": 12}}\n</tool_call>\n<tool',  # the next tag arrives cut in two
        '_call>\n{"name": "get_ti',
        'me", "arguments": {}}\n</tool_call>',
    ]
    steps = run(tokenizer, choice, pieces)
    assert text_of(steps, "reasoning") == "Two calls."
    assert text_of(steps, "content").strip() == ""
    calls = calls_of(steps)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Oslo", "days": 12}, {}]
    assert len({c["id"] for c in calls}) == 2
    assert choice.reasoning_tokens() == len(ids(tokenizer, "Two calls."))
    assert choice.finish_reason("stop") == "tool_calls"


def test_auto_text_held_back_as_a_possible_tag_is_sent_at_the_end(tokenizer: Any) -> None:
    choice = parser(tokenizer, tools=ToolUse((WEATHER,), "auto"))
    steps = run(tokenizer, choice, ["Hello ", "<tool"])
    assert steps[-1].content == "<tool"  # held back until the end showed it was text
    assert text_of(steps, "content") == "Hello <tool"
    assert calls_of(steps) == [] and choice.finish_reason("stop") == "stop"


def test_auto_call_cut_by_length_keeps_length(tokenizer: Any) -> None:
    choice = parser(tokenizer, tools=ToolUse((WEATHER,), "auto"))
    steps = run(tokenizer, choice, ["<tool_call>", '\n{"name": "get_weather", "arguments": {"ci'])
    assert [c["name"] for c in calls_of(steps)] == ["get_weather"]
    assert choice.finish_reason("length") == "length"


class _LaggingParser:
    """A tool parser whose streaming leaves the arguments' end unsent (as parsers do when
    the closing text arrives with the end of the output); the final parse has it all."""

    def extract_tool_calls_streaming(self, previous, current, delta, *rest: Any) -> Any:
        from vllm.entrypoints.generate.base.protocol import (
            DeltaFunctionCall,
            DeltaMessage,
            DeltaToolCall,
        )

        if previous:
            return None
        function = DeltaFunctionCall(name="get_weather", arguments='{"city": "Pa')
        return DeltaMessage(tool_calls=[DeltaToolCall(index=0, id="x", function=function)])

    def extract_tool_calls(self, text: str, request: Any) -> Any:
        from vllm.entrypoints.generate.base.protocol import (
            ExtractedToolCallInformation,
            FunctionCall,
            ToolCall,
        )

        calls = [
            ToolCall(function=FunctionCall(name="get_weather", arguments='{"city": "Paris"}')),
            ToolCall(function=FunctionCall(name="get_time", arguments="{}")),
        ]
        return ExtractedToolCallInformation(tools_called=True, tool_calls=calls)


def test_auto_remainders_and_unreported_calls_come_at_the_end() -> None:
    choice = ChoiceParser(0, tool_mode="auto", tool_parser=_LaggingParser())
    steps = [choice.feed("a", [1]), choice.feed("b", [2]), choice.finish()]
    calls = calls_of(steps)
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", "{}"),
    ]
    assert [c.arguments for c in steps[-1].calls] == ['ris"}', "{}"]


# ---- tool_choice required / named (structured outputs) -----------------------------------


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_required_array_streams_each_call_as_it_comes(tokenizer: Any) -> None:
    array = (
        '[{"name":"get_weather","parameters":{"city":"Pa\\"ris]","days":3}},'
        '{"name":"get_time","parameters":{}}]'
    )
    choice = parser(tokenizer, tools=ToolUse((WEATHER, CLOCK), "required"))
    steps = run(tokenizer, choice, chunks(array, 3))
    calls = calls_of(steps)
    expected = json.loads(array)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["arguments"]) for c in calls] == [e["parameters"] for e in expected]
    assert calls[0]["arguments"] == '{"city":"Pa\\"ris]","days":3}'  # the text, exactly
    # incremental: the first call was announced long before the array was complete
    first = next(i for i, step in enumerate(steps) if step.calls)
    assert first < len(steps) // 2
    assert text_of(steps, "content") == ""
    assert choice.finish_reason("stop") == "tool_calls"


def test_named_function_arguments_are_the_text(tokenizer: Any) -> None:
    arguments = '{"city":"Rome","days":2}'
    choice = parser(tokenizer, tools=ToolUse((WEATHER, CLOCK), "named", "get_weather"))
    steps = run(tokenizer, choice, chunks(arguments, 4))
    [call] = calls_of(steps)
    assert call["name"] == "get_weather" and call["arguments"] == arguments
    assert choice.finish_reason("stop") == "stop"  # a forced function stops, as OpenAI's


def test_none_choice_parses_nothing(tokenizer: Any) -> None:
    choice = parser(tokenizer, tools=ToolUse((WEATHER,), "none"))
    steps = run(tokenizer, choice, ONE_CALL)
    assert text_of(steps, "content") == "".join(ONE_CALL) and calls_of(steps) == []


def test_required_and_named_schemas_are_vllms() -> None:
    required = tool_call_schema(ToolUse((WEATHER, CLOCK), "required", parallel=False))
    assert required["type"] == "array" and required["minItems"] == 1
    assert required["maxItems"] == 1
    names = [item["properties"]["name"]["enum"] for item in required["items"]["anyOf"]]
    assert names == [["get_weather"], ["get_time"]]
    assert all(item["additionalProperties"] is False for item in required["items"]["anyOf"])
    assert "maxItems" not in tool_call_schema(ToolUse((WEATHER,), "required"))
    named = tool_call_schema(ToolUse((WEATHER, CLOCK), "named", "get_time"))
    assert named == {"type": "object", "properties": {}}


def test_refusals() -> None:
    with pytest.raises(ApiException) as auto:
        check_tools(ToolUse((WEATHER,), "auto"), None)
    assert auto.value.error.status == 400 and "required" in auto.value.error.message
    with pytest.raises(ApiException) as named:
        check_tools(ToolUse((WEATHER,), "named", "nope"), "hermes")
    assert named.value.error.status == 400 and named.value.error.param == "tool_choice"
    check_tools(ToolUse((WEATHER,), "required"), None)  # any model can be forced


def test_template_gets_tools_and_object_arguments(tokenizer: Any) -> None:
    from app.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine.__new__(VLLMEngine)  # render only needs the tokenizer
    engine.tokenizer = tokenizer
    template = (
        "{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}|"
        "{{ enable_thinking }}|{% for m in messages %}{% for c in m.tool_calls or [] %}"
        "{{ c.function.arguments.city if c.function.arguments is mapping "
        "else 'TEXT:' ~ c.function.arguments }};{% endfor %}{% endfor %}"
    )
    tokenizer.chat_template = template
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {**call, "function": {**call["function"], "arguments": '{"city": "Oslo"}'}},
                {**call, "function": {**call["function"], "arguments": "not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    rendered = engine.render(None, messages, ToolUse((WEATHER, CLOCK)), True)
    assert rendered == "get_weather,get_time|True|Oslo;TEXT:not json;"
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
