"""What the tiny agent decoder must do, on prompts its training never saw verbatim.

Shared by the build (which refuses to write a model that fails) and the unit tests. Each
case is a conversation, the tools offered, whether thinking is on, and what the greedy
output must be: behaviour "a" (think, then answer), "b" (answer only), "c" (tool calls, in
vLLM's hermes format, cities copied from the question), "d" (a plain answer to a tool's
result). Names outside the training list are reported, not required ("bonus").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

MAX_NEW_TOKENS = 60
CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
TAGS = ("<think>", "</think>", "<tool_call>", "</tool_call>")


def function(name: str, description: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = function("get_weather", "Get the current weather for a city.")
TIME = function("get_time", "Get the current local time for a city.")
TOOLS = [WEATHER, TIME]


@dataclass(frozen=True)
class Case:
    behaviour: str  # "a" | "b" | "c" | "d"
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    thinking: bool
    calls: tuple[tuple[str, str], ...] = ()  # (tool, city) expected, in order, for "c"
    bonus: bool = False  # generalisation beyond the training names: reported only


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def after_result(question: str, city: str, result: str, as_string: bool) -> list[dict[str, Any]]:
    arguments: Any = {"city": city}
    if as_string:
        arguments = json.dumps(arguments)
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    return [
        *user(question),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": result},
    ]


def calls(tools: list[dict[str, Any]], thinking: bool, question: str, *cities: str) -> Case:
    """A tool-call case: the weather or the time (as the question asks) of each city."""
    name = "get_time" if "time" in question else "get_weather"
    return Case("c", user(question), tools, thinking, tuple((name, city) for city in cities))


WEATHER_RESULT = '{"temperature": 21, "sky": "sunny"}'
CASES = [
    Case("a", user("What is the capital of Peru?"), None, True),
    Case("a", user("Hello"), None, True),
    Case("a", user("Tell me about volcanoes."), None, True),
    Case("b", user("How are you?"), None, False),
    Case("b", user("Explain photosynthesis."), None, False),
    Case("b", user("What is your name?"), TOOLS, False),
    calls(TOOLS, False, "What is the weather in Paris?", "Paris"),
    calls(TOOLS, True, "What time is it in Tokyo?", "Tokyo"),
    calls([WEATHER], False, "Could you check the weather in Berlin for me?", "Berlin"),
    calls(TOOLS, False, "What is the weather in Madrid and Oslo?", "Madrid", "Oslo"),
    calls(TOOLS, True, "Weather in Cairo and Seoul?", "Cairo", "Seoul"),
    # Cities the training never named: generalisation, reported only.
    replace(calls(TOOLS, False, "What is the weather in Geneva?", "Geneva"), bonus=True),
    replace(
        calls(TOOLS, False, "What time is it in Osaka and Porto?", "Osaka", "Porto"), bonus=True
    ),
    Case(
        "d",
        after_result("What is the weather in Paris?", "Paris", WEATHER_RESULT, False),
        TOOLS,
        False,
    ),
    Case("d", after_result("Weather in Rome?", "Rome", "Cloudy, 14 C", True), TOOLS, True),
]


def generate(model: Any, tokenizer: Any, case: Case) -> tuple[str, bool]:
    """Greedy output (special tokens dropped, as vLLM returns it) and whether it ended."""
    import torch

    prompt = tokenizer.apply_chat_template(
        case.messages,
        tools=case.tools,
        add_generation_prompt=True,
        enable_thinking=case.thinking,
        tokenize=False,
    )
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    new = out[0, ids.shape[1] :].tolist()
    ended = bool(new) and new[-1] == tokenizer.eos_token_id
    return tokenizer.decode(new, skip_special_tokens=True), ended


def problems(case: Case, text: str, ended: bool) -> list[str]:
    """Why `text` fails `case` (empty: it passes)."""
    found = [] if ended else [f"no EOS within {MAX_NEW_TOKENS} tokens"]
    rest = text
    if case.thinking:
        if not text.startswith("<think>") or "</think>" not in text:
            return [*found, "no <think>...</think> first"]
        thought, rest = text[len("<think>") :].split("</think>", 1)
        if not thought.strip():
            found.append("empty thought")
    if case.behaviour in "abd":
        if not rest.strip():
            found.append("empty answer")
        if any(tag in rest for tag in TAGS):
            found.append("tags in the answer")
        return found
    bodies = CALL.findall(rest)
    if CALL.sub("", rest).strip():
        found.append("text beside the tool calls")
    calls = []
    for body in bodies:
        try:
            call = json.loads(body)
        except ValueError:
            return [*found, f"not JSON: {body!r}"]
        if not isinstance(call, dict) or set(call) != {"name", "arguments"}:
            return [*found, f"not a hermes call: {body!r}"]
        calls.append((call["name"], call["arguments"]))
    wanted = [(name, {"city": city}) for name, city in case.calls]
    if calls != wanted:
        found.append(f"calls {calls} instead of {wanted}")
    return found


def run(model: Any, tokenizer: Any) -> list[dict[str, Any]]:
    """Every case's output and verdict, for pioneer_build.json."""
    results = []
    for case in CASES:
        text, ended = generate(model, tokenizer, case)
        failed = problems(case, text, ended)
        results.append(
            {
                "behaviour": case.behaviour,
                "thinking": case.thinking,
                "last_message": case.messages[-1]["content"],
                "output": text,
                "passed": not failed,
                "problems": failed,
                "bonus": case.bonus,
            }
        )
    return results
