"""The parts of an answer in the order a model makes them, for the formats whose answer is a
list of parts (Responses output items, Anthropic content blocks): its reasoning, its text,
its tool calls. A stream opens a part when its first piece arrives and closes it when the
next part begins; a whole answer lists the same parts."""

from __future__ import annotations

from typing import Any, Literal

from app.generation import GenerationTally
from app.protocol import ReasoningDelta, TokenDelta, ToolCallDelta

Part = tuple[Literal["reasoning", "text", "call"], int]  # (kind, which call)


def parts_of(tally: GenerationTally, show_reasoning: bool) -> list[Part]:
    """A whole answer's parts: its reasoning when shown, its text (always, unless it only
    called tools), its calls."""
    parts: list[Part] = []
    if show_reasoning and tally.reasoning_text(0):
        parts.append(("reasoning", 0))
    calls = tally.tool_calls(0)
    if tally.text(0) or not calls:
        parts.append(("text", 0))
    parts.extend(("call", n) for n in range(len(calls)))
    return parts


def piece_of(event: Any) -> tuple[Part, str] | None:
    """The part an engine event adds to (of the first choice) and the text it adds; None for
    an event that adds nothing. A call's first piece may carry no argument text."""
    if isinstance(event, TokenDelta) and event.index == 0 and event.text:
        return ("text", 0), event.text
    if isinstance(event, ReasoningDelta) and event.index == 0 and event.text:
        return ("reasoning", 0), event.text
    if isinstance(event, ToolCallDelta) and event.index == 0:
        return ("call", event.call), event.arguments
    return None
