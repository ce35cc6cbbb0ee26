"""Tools and prefix caching through the vLLM engine itself (in-process, no Ray).

On the tiny random Llama: it knows no tool format, so only the forced choices (required, a
named function) make calls, through vLLM's structured outputs; `auto` needs a tool parser it
does not have. Prefix caching: vLLM's own count of reused prompt tokens.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from app.engines.vllm_engine import VLLMEngine
from app.engines.vllm_tools import tool_call_schema
from app.protocol import (
    ApiException,
    ChoiceFinished,
    GenerationStarted,
    SamplingOptions,
    TokenDelta,
    ToolCallDelta,
    ToolSpec,
    ToolUse,
)
from tests.conftest import MODELS
from tests.integration.tiny_engine import tiny_engine

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city for some days",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 9},
        },
        "required": ["city", "days"],
        "additionalProperties": False,
    },
)
ALARM = ToolSpec(
    "set_alarm",
    None,
    {
        "type": "object",
        "properties": {"hour": {"type": "integer", "minimum": 0, "maximum": 23}},
        "required": ["hour"],
        "additionalProperties": False,
    },
)
SCHEMAS = {tool.name: tool.parameters for tool in (WEATHER, ALARM)}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """AsyncLLM binds its output handler to the loop of its first request: one for all."""
    loop = asyncio.new_event_loop()
    yield loop
    # the engine's output handler still waits on this loop: end it here, not at exit
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@pytest.fixture(scope="module")
def engine(loop: asyncio.AbstractEventLoop):  # noqa: ANN201 - VLLMEngine
    with tiny_engine() as engine:
        yield engine


def collect(
    loop: asyncio.AbstractEventLoop,
    engine: VLLMEngine,
    prompt: str,
    options: SamplingOptions,
    **kw: Any,
) -> list[Any]:
    """All events of one generation."""
    adapter = kw.pop("adapter", None)

    async def main() -> list[Any]:
        stream = engine.generate(prompt, options, uuid.uuid4().hex, adapter, **kw)
        return [event async for event in stream]

    return loop.run_until_complete(main())


def calls_of(events: list[Any]) -> list[dict[str, str]]:
    calls: list[dict[str, str]] = []
    for piece in (e for e in events if isinstance(e, ToolCallDelta)):
        if piece.call == len(calls):
            assert piece.id and piece.name
            calls.append({"id": piece.id, "name": piece.name, "arguments": piece.arguments})
        else:
            assert piece.id is None
            calls[piece.call]["arguments"] += piece.arguments
    return calls


def finished(events: list[Any]) -> ChoiceFinished:
    [end] = [e for e in events if isinstance(e, ChoiceFinished)]
    return end


def test_required_calls_are_valid_and_equal_the_whole_text(
    loop: asyncio.AbstractEventLoop, engine: VLLMEngine
) -> None:
    tools = ToolUse((WEATHER, ALARM), "required", parallel=False)
    prompt = engine.render(None, MESSAGES, tools)
    for seed in (1, 2, 3):
        options = SamplingOptions(max_tokens=160, temperature=1.0, seed=seed)
        events = collect(loop, engine, prompt, options, tools=tools)
        [call] = calls_of(events)  # parallel false: one call
        arguments = json.loads(call["arguments"])
        jsonschema.validate(arguments, SCHEMAS[call["name"]])
        assert finished(events).finish_reason == "tool_calls"
        tokens = sum(e.tokens for e in events if isinstance(e, TokenDelta))
        assert "".join(e.text for e in events if isinstance(e, TokenDelta)) == ""
        # the same generation unparsed: vLLM's array, whose element the pieces add up to
        raw_options = SamplingOptions(
            max_tokens=160, temperature=1.0, seed=seed, json_schema=tool_call_schema(tools)
        )
        raw_events = collect(loop, engine, prompt, raw_options)
        text = "".join(e.text for e in raw_events if isinstance(e, TokenDelta))
        assert json.loads(text) == [{"name": call["name"], "parameters": arguments}]
        assert call["arguments"] in text
        assert tokens == sum(e.tokens for e in raw_events if isinstance(e, TokenDelta))


def test_named_function_is_forced_and_valid(
    loop: asyncio.AbstractEventLoop, engine: VLLMEngine
) -> None:
    tools = ToolUse((WEATHER, ALARM), "named", "set_alarm")
    prompt = engine.render(None, MESSAGES, tools)
    options = SamplingOptions(max_tokens=60, temperature=1.0, seed=7)
    events = collect(loop, engine, prompt, options, tools=tools)
    [call] = calls_of(events)
    assert call["name"] == "set_alarm" and call["id"].startswith("call_")
    jsonschema.validate(json.loads(call["arguments"]), ALARM.parameters)
    assert finished(events).finish_reason == "stop"


def test_refusals_are_400s(loop: asyncio.AbstractEventLoop, engine: VLLMEngine) -> None:
    prompt = engine.render(None, MESSAGES)
    options = SamplingOptions(max_tokens=4)
    cases = [
        ({"tools": ToolUse((WEATHER,), "auto")}, options, "tool_choice"),  # no tool parser
        (
            {"tools": ToolUse((WEATHER,), "required")},
            SamplingOptions(max_tokens=4, json_object=True),
            "response_format",
        ),
        (  # a grammar this engine could not hold back until the reasoning ends
            {"tools": ToolUse((WEATHER,), "required"), "reasoning": True},
            options,
            "reasoning",
        ),
    ]
    for kw, opts, param in cases:
        with pytest.raises(ApiException) as refused:
            collect(loop, engine, prompt, opts, reasoning_parser="deepseek_r1", **kw)
        assert refused.value.error.status == 400 and refused.value.error.param == param


def test_prefix_cache_counts_a_repeated_long_prompt(
    loop: asyncio.AbstractEventLoop, engine: VLLMEngine
) -> None:
    block = engine.engine.vllm_config.cache_config.block_size
    text = "hello world, tell me about the model server. " * 60
    words = engine.tokenizer.decode(engine.tokenizer.encode(text, add_special_tokens=False)[:300])
    options = SamplingOptions(max_tokens=2, temperature=0.0)
    for adapter in (None, str(MODELS / "jobs" / "job_tiny_lora01")):
        prompt = f"{uuid.uuid4().hex} {words}"  # a prefix this engine has never seen
        tokens = engine.count_tokens(prompt)
        assert block < tokens < 400  # a ~300-token prompt (max_model_len 512)
        first = collect(loop, engine, prompt, options, adapter=adapter)[0]
        second = collect(loop, engine, prompt, options, adapter=adapter)[0]
        assert isinstance(first, GenerationStarted) and isinstance(second, GenerationStarted)
        assert first.cached_tokens == 0
        assert 0 < second.cached_tokens <= tokens and second.cached_tokens % block == 0
