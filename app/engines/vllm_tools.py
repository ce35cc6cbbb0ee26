"""vLLM's tool and reasoning machinery as the engine uses it: the tools in OpenAI's form, the
JSON schema structured outputs force for a required or named call, the parser classes by
their catalog names, and chat turns as templates take them. No Ray in here."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.protocol import ApiError, ApiException, ToolUse, quoted


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def openai_tools(tools: ToolUse) -> list[dict[str, Any]]:
    """The tools in the OpenAI form chat templates and vLLM's tool code take."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                **({"description": tool.description} if tool.description is not None else {}),
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            },
        }
        for tool in tools.tools
    ]


def tool_call_schema(tools: ToolUse) -> dict[str, Any]:
    """The JSON schema vLLM itself forces for `required` (an array of {name, parameters},
    at most one item unless parallel calls are allowed) or a named function (its arguments
    object: the generated text is the call's arguments)."""
    from vllm.entrypoints.openai.chat_completion.protocol import (
        ChatCompletionNamedToolChoiceParam,
        ChatCompletionToolsParam,
    )
    from vllm.tool_parsers.utils import get_json_schema_from_tools

    params = [ChatCompletionToolsParam.model_validate(tool) for tool in openai_tools(tools)]
    if tools.choice == "named":
        choice: Any = ChatCompletionNamedToolChoiceParam.model_validate(
            {"type": "function", "function": {"name": tools.name}}
        )
    else:
        choice = "required"
    try:
        schema = get_json_schema_from_tools(choice, params, tools.parallel)
    except ValueError as exc:
        raise ApiException(ApiError.invalid(str(exc), "tool_choice", 400)) from exc
    assert isinstance(schema, dict)
    if tools.choice == "required":
        # vLLM's {name, parameters} envelope leaves other keys open; a weak model then
        # wanders off into made-up keys until max_tokens. The envelope has no others.
        for item in schema["items"]["anyOf"]:
            item["additionalProperties"] = False
    return schema


def check_tools(tools: ToolUse, tool_parser: str | None) -> None:
    """What the ingress should have refused already: checked again here as a safety net."""
    if tools.choice == "named" and tools.name not in {tool.name for tool in tools.tools}:
        raise ApiException(
            ApiError.invalid(
                f"tool_choice names the function {quoted(tools.name)}, which is not in tools.",
                "tool_choice",
                400,
            )
        )
    if tools.choice == "auto" and tool_parser is None:
        raise ApiException(
            ApiError.invalid(
                "This model has no tool-call parser, so it cannot choose tools itself "
                "(tool_choice 'auto'): use tool_choice 'required' or a named function.",
                "tool_choice",
                400,
            )
        )


def chat_request(tools: ToolUse) -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest(
        model="",
        messages=[],
        tools=openai_tools(tools),
        tool_choice="auto",
        parallel_tool_calls=tools.parallel,
    )


def make_parser(cls: Any, tokenizer: Any, *args: Any) -> Any:
    """An instance of one of vLLM's parsers; one that cannot work with this model's
    tokenizer (markers missing from its vocabulary) is a catalog mistake, said clearly."""
    try:
        return cls(tokenizer, *args)
    except Exception as exc:
        raise ApiException(
            ApiError.internal(
                f"{cls.__name__} does not work with this model's tokenizer ({exc}): the "
                "catalog's reasoning_parser / tool_parser for it is wrong."
            )
        ) from exc


_PARSERS: dict[tuple[str, str], Any] = {}


def _parser_class(kind: str, name: str) -> Any:
    """vLLM's registered parser class of `kind` (reasoning | tool) named `name`, cached."""
    if (kind, name) not in _PARSERS:
        if kind == "reasoning":
            from vllm.reasoning import ReasoningParserManager

            lookup = ReasoningParserManager.get_reasoning_parser
        else:
            from vllm.tool_parsers import ToolParserManager

            lookup = ToolParserManager.get_tool_parser
        try:
            _PARSERS[kind, name] = lookup(name)
        except KeyError as exc:
            raise ApiException(
                ApiError.internal(
                    f"The catalog names {kind} parser {quoted(name)}, which this vLLM does "
                    "not have."
                )
            ) from exc
    return _PARSERS[kind, name]


def reasoning_class(name: str) -> Any:
    return _parser_class("reasoning", name)


def tool_class(name: str) -> Any:
    return _parser_class("tool", name)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns as chat templates take them: an assistant's tool-call arguments as objects
    (canonical messages carry them as JSON text; text that is not JSON stays as it is)."""
    if not any(message.get("tool_calls") for message in messages):
        return messages
    rendered = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = {**message, "tool_calls": [_call_with_object_arguments(c) for c in calls]}
        rendered.append(message)
    return rendered


def _call_with_object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    try:
        arguments = json.loads(function["arguments"])
    except ValueError:
        return call
    if not isinstance(arguments, dict):
        return call
    return {**call, "function": {**function, "arguments": arguments}}
