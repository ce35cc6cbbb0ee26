"""Seeded chat transcripts that teach the tiny agent decoder to think and to call tools.

Each example is a conversation in the OpenAI message shape, the tools offered (or none),
whether thinking is on, and the completion the model must write after the generation prompt.
The completions follow a handful of fixed shapes (short answers, `<think>` notes, hermes
`<tool_call>` JSON) so that a 2-layer model learns them in a couple of minutes; the words
that vary (cities, results, topics) are copied from the conversation, never invented, so the
model learns to copy rather than to memorize. Half the cities are made-up names for that
reason: a name it has never seen can only be got right by copying it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

CITIES = (
    "Paris London Rome Berlin Tokyo Madrid Lisbon Vienna Prague Dublin Oslo Cairo Lima Sydney "
    "Toronto Chicago Boston Seattle Denver Austin Mumbai Delhi Seoul Beijing Bangkok Nairobi "
    "Moscow Athens Warsaw Zurich Amsterdam Brussels Helsinki Stockholm"
).split() + ["New York", "Buenos Aires", "Cape Town", "Hong Kong"]
# Never in the training data: the build's checks ask about some (generalisation, a bonus).
HELD_OUT_CITIES = ["Geneva", "Milan", "Osaka", "Porto", "Kyoto", "Santiago"]
CONSONANTS, VOWELS = "bcdfghjklmnprstvwxyz", "aeiouy"
SKIES = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy", "clear", "stormy"]
TOPICS = ["football", "science", "music", "space", "cooking", "the economy", "elections", "art"]
SYSTEMS = [
    "You are a helpful assistant.",
    "You are a concise assistant.",
    "You are a friendly assistant that can use tools.",
    "Answer briefly.",
]

WEATHER_ASKS = [
    "What is the weather in {c}?",
    "What's the weather like in {c}?",
    "How is the weather in {c} today?",
    "Is it raining in {c}?",
    "Weather in {c}?",
    "Tell me the weather in {c}.",
    "what is the weather in {c}",
]
TIME_ASKS = [
    "What time is it in {c}?",
    "What is the time in {c}?",
    "Tell me the time in {c}.",
    "Current time in {c}?",
    "What's the local time in {c}?",
]
NEWS_ASKS = ["What is the news about {t}?", "Any news on {t}?", "Give me the latest news on {t}."]
TWO_WEATHER = ["What is the weather in {a} and {b}?", "Weather in {a} and {b}?"]
TWO_WEATHER += ["How is the weather in {a} and {b} today?", "Tell me the weather in {a} and {b}."]
TWO_TIME = ["What time is it in {a} and {b}?", "What is the time in {a} and {b}?"]

# (questions, answer, thought): plain chat that no tool serves. "{x}" is copied.
PLAIN: list[tuple[list[str], str, str]] = [
    (
        ["Hello", "Hi", "Hi there", "Hey", "Good morning", "Hello there", "hello"],
        "Hello! How can I help you today?",
        "The user greets me. I greet them back.",
    ),
    (
        ["How are you?", "How are you today?", "How is it going?"],
        "I am well, thank you. How can I help?",
        "The user asks how I am. I answer kindly.",
    ),
    (
        ["What is your name?", "Who are you?", "What are you?"],
        "I am a tiny test assistant.",
        "The user asks who I am. I say it.",
    ),
    (
        ["Thanks", "Thank you", "Thank you very much", "Thanks a lot"],
        "You are welcome!",
        "The user thanks me. I reply politely.",
    ),
    (
        ["Tell me a joke.", "Make me laugh.", "Do you know a joke?"],
        "Why did the robot rest? Its battery was low.",
        "The user wants a joke. I tell one.",
    ),
    (
        ["What color is the sky?", "What colour is the sky?", "Is the sky blue?"],
        "The sky is blue.",
        "The user asks about the sky. It is blue.",
    ),
    (
        ["Bye", "Goodbye", "See you later"],
        "Goodbye! Have a nice day.",
        "The user says goodbye. I say goodbye too.",
    ),
    (
        ["Can you help me with {x}?", "I need help with {x}.", "Help me with {x}."],
        "Sure, I can help with {x}. What do you need?",
        "The user needs help. I offer it.",
    ),
    (
        ["Repeat after me: {x}", "Say {x}.", "Please say {x}."],
        "{x}",
        "The user wants me to repeat words. I repeat them.",
    ),
]
HELP_TOPICS = ["my homework", "cooking", "math", "a letter", "python code", "my garden"]
HELP_TOPICS += ["a poem", "my resume", "travel plans", "a bug"]
SAY_WORDS = ["hello world", "good night", "blue sky", "red apple", "open door", "green tea"]
SAY_WORDS += ["tiny model", "fast car", "happy day", "cold water"]
# Open questions on any subject get one humble answer: the model cannot know things, and a
# single reply learnt from many shapes of question is what it falls back on for new ones.
OPEN_ASKS = ["What is {w}?", "What are {w}?", "Explain {w}.", "Tell me about {w}."]
OPEN_ASKS += ["How does {w} work?", "Why is {w} important?", "Write a poem about {w}."]
OPEN_ASKS += ["Who invented {w}?", "Can you describe {w} in one sentence?", "Is {w} good?"]
OPEN_ASKS += ["What is the capital of {W}?", "Where is {W}?", "What is {n} plus {m}?"]
OPEN_ASKS += ["Write a haiku.", "What should I cook tonight?", "Give me some advice."]
OPEN_WORDS = "gravity music dogs cats the moon the sun rain history chess coffee bread love "
OPEN_WORDS += "physics money time sleep trees rivers computers language art football ice fire"
OPEN_WORDS += " the ocean democracy bicycles robots tea friendship math stars"
OPEN_ANSWER = "That is a good question. I can only give a short answer: it depends."
OPEN_THOUGHT = "The user asks a question. I answer briefly."
NO_TOOL_ANSWER = "I cannot look that up without a tool."
NO_TOOL_THOUGHT = "No tool is available. I answer directly."


SUMMARIES = {
    "get_weather": [
        "Get the current weather for a city.",
        "Get the weather for a city",
        "Returns current weather conditions.",
        "Weather lookup",
    ],
    "get_time": [
        "Get the current local time for a city.",
        "Get the time for a city",
        "Returns the local time.",
        "Clock lookup",
    ],
    "get_news": ["Get the latest news on a topic.", "News search"],
}
# Tools the user never asks for: the model must read which tools there are, not count them.
DISTRACTORS = [("search_web", "query"), ("send_email", "to"), ("get_stock_price", "symbol")]
DISTRACTORS += [("translate", "text"), ("set_alarm", "time"), ("calculator", "expression")]


def _tool(rng: random.Random, name: str, arg: str) -> dict[str, Any]:
    """A tool as clients write them: the summary and the schema's extras vary, since the
    model must call the same way whatever the schema says beside the argument's name."""
    summary = rng.choice(SUMMARIES.get(name, ["Does what its name says.", "A helper tool"]))
    summary = rng.choice([summary, summary, f"{name} of a city", ""])
    prop: dict[str, Any] = {"type": "string"}
    if rng.random() < 0.3:
        prop["description"] = rng.choice(["City name", "The city, e.g. Paris", f"The {arg}"])
    if rng.random() < 0.25:
        prop["maxLength"] = rng.choice([16, 32, 100])
    props = {arg: prop}
    if rng.random() < 0.15:  # optional, so never part of a call
        props["unit"] = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    params: dict[str, Any] = {"type": "object", "properties": props, "required": [arg]}
    if rng.random() < 0.3:
        params["additionalProperties"] = False
    function = {"name": name, "description": summary, "parameters": params}
    return {"type": "function", "function": function}


@dataclass
class Example:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    thinking: bool
    completion: str  # what follows the generation prompt, without the EOS token


def argument(tool: str) -> str:
    return "topic" if tool == "get_news" else "city"


def city(rng: random.Random) -> str:
    """A city of the list, or a made-up name (which only copying can get right)."""
    if rng.random() < 0.5:
        return rng.choice(CITIES)
    return " ".join(_made_up(rng) for _ in range(1 if rng.random() < 0.9 else 2))


def _made_up(rng: random.Random) -> str:
    """A pronounceable made-up word, 3 to 10 letters (so 1 to 5 tokens) long."""
    letters, vowel = [], rng.random() < 0.3
    for _ in range(rng.randint(3, 10)):
        letters.append(rng.choice(VOWELS if vowel else CONSONANTS))
        vowel = not vowel if rng.random() < 0.85 else vowel
    return "".join(letters).capitalize()


def call(name: str, **arguments: str) -> str:
    """A call exactly as vLLM's hermes parser reads it (json.dumps: ", " and ": ")."""
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def _plain(rng: random.Random) -> tuple[str, str, str]:
    """(question, answer, thought) for chat no tool serves."""
    draw = rng.random()
    if draw < 0.35:
        words = OPEN_WORDS.split(" ") + [city(rng).lower() for _ in range(4)]
        ask = rng.choice(OPEN_ASKS).format(
            w=rng.choice(words), W=city(rng), n=rng.randint(0, 99), m=rng.randint(0, 99)
        )
        return ask, OPEN_ANSWER, OPEN_THOUGHT
    # Repeating made-up words is the densest copying lesson there is: every answer token is
    # read from the question. It keeps agent_decoder's copy circuit in use and in shape.
    questions, answer, thought = PLAIN[-1] if draw < 0.55 else rng.choice(PLAIN)
    if answer != "{x}":
        x = rng.choice(HELP_TOPICS)
    elif rng.random() < 0.3:
        x = rng.choice(SAY_WORDS)
    else:
        x = " ".join(city(rng) for _ in range(rng.randint(1, 4)))
    return rng.choice(questions).format(x=x), answer.format(x=x), thought


def _tool_request(rng: random.Random, names: set[str]) -> tuple[str, list[tuple[str, str]], str]:
    """A question the offered tools answer: (question, [(tool, argument)], thought)."""
    kinds = [k for k in ("weather", "time", "news") if f"get_{k}" in names]
    kind = rng.choice(kinds)
    if kind == "news":
        topic = rng.choice(TOPICS)
        thought = "The user wants news. I call get_news."
        return rng.choice(NEWS_ASKS).format(t=topic), [("get_news", topic)], thought
    a, b = city(rng), city(rng)
    if rng.random() < 0.6:
        asks = WEATHER_ASKS if kind == "weather" else TIME_ASKS
        thought = f"The user asks about the {kind}. I call get_{kind}."
        return rng.choice(asks).format(c=a), [(f"get_{kind}", a)], thought
    asks = TWO_WEATHER if kind == "weather" else TWO_TIME
    thought = f"Two cities. I call get_{kind} twice."
    return rng.choice(asks).format(a=a, b=b), [(f"get_{kind}", a), (f"get_{kind}", b)], thought


def _result(rng: random.Random, tool: str, arg: str) -> str:
    """What a tool sends back: JSON or plain text, as clients do."""
    if tool == "get_news":
        headline = f"{rng.choice(['Big', 'New', 'Good'])} day for {arg}"
        return rng.choice([json.dumps({"headline": headline}), headline])
    if tool == "get_time":
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        return rng.choice([json.dumps({"time": clock}), clock, f"It is {clock}"])
    degrees, sky = rng.randint(-5, 35), rng.choice(SKIES)
    return rng.choice(
        [
            json.dumps({"temperature": degrees, "sky": sky}),
            json.dumps({"city": arg, "temperature": degrees, "sky": sky}),
            f"{degrees} degrees and {sky}",
            f"{sky.capitalize()}, {degrees} C",
        ]
    )


def _offered(rng: random.Random) -> list[dict[str, Any]]:
    names = rng.choice(
        [["get_weather"], ["get_time"], ["get_weather", "get_time"], ["get_weather", "get_time"]]
        + [["get_weather", "get_time", "get_news"], ["get_news", "get_weather"]]
    )
    made = [_tool(rng, name, argument(name)) for name in names]
    if rng.random() < 0.3:
        made.append(_tool(rng, *rng.choice(DISTRACTORS)))
    rng.shuffle(made)
    return made


def _calls_message(rng: random.Random, calls: list[tuple[str, str]]) -> dict[str, Any]:
    tool_calls = []
    for index, (name, value) in enumerate(calls):
        arguments: Any = {argument(name): value}
        if rng.random() < 0.3:  # clients send arguments as a JSON string too
            arguments = json.dumps(arguments)
        function = {"name": name, "arguments": arguments}
        tool_calls.append({"id": f"call_{index}", "type": "function", "function": function})
    return {"role": "assistant", "content": None, "tool_calls": tool_calls}


def example(rng: random.Random) -> Example:
    """One transcript: tool calls (28%), an answer to tool results (25%), chat (47%)."""
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": rng.choice(SYSTEMS)})
    if rng.random() < 0.2:  # an earlier exchange, so later turns are read in context
        question, answer, _ = _plain(rng)
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    thinking = rng.random() < 0.5
    tools = _offered(rng) if rng.random() < 0.75 else None
    shape = rng.random()
    if tools is None and shape < 0.15:  # a tool's question without the tool: no call
        question = _tool_request(rng, {"get_weather", "get_time"})[0]
        messages.append({"role": "user", "content": question})
        return Example(messages, None, thinking, _think(thinking, NO_TOOL_THOUGHT) + NO_TOOL_ANSWER)
    if tools is None or shape < 0.3:  # plain chat, tools or not
        question, answer, thought = _plain(rng)
        messages.append({"role": "user", "content": question})
        return Example(messages, tools, thinking, _think(thinking, thought) + answer)
    names = {tool["function"]["name"] for tool in tools}
    question, calls, thought = _tool_request(rng, names)
    messages.append({"role": "user", "content": question})
    if shape < 0.65:
        completion = "".join(call(name, **{argument(name): value}) for name, value in calls)
        return Example(messages, tools, thinking, _think(thinking, thought) + completion)
    # The results came back. The answer quotes them: after "returned " (a lowercase word and
    # its space, one BPE piece) a result is the same tokens as in the tool turn, so the copy
    # circuit carries it over whatever its shape, and stops where the tool turn stopped.
    messages.append(_calls_message(rng, calls))
    contents = [_result(rng, name, value) for name, value in calls]
    for index, content in enumerate(contents):
        messages.append({"role": "tool", "tool_call_id": f"call_{index}", "content": content})
    answer = ("The tool returned " if len(contents) == 1 else "The tools returned ") + (
        " and ".join(contents)
    )
    thought = "The tool answered. I report the result."
    return Example(messages, tools, thinking, _think(thinking, thought) + answer)


def _think(thinking: bool, thought: str) -> str:
    return f"<think>{thought}</think>" if thinking else ""


def examples(count: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    return [example(rng) for _ in range(count)]
