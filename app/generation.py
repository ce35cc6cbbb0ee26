"""Running a generation through a decoder deployment, with its accounting.

The stream of engine events goes to the caller's translator as it arrives; what was generated
is tallied on the way so the record and the bill are right however the stream ends: finished,
failed, or cut off by the client (billed for the tokens generated so far).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    GenerationStarted,
    InferenceRequest,
    ReasoningDelta,
    ResolvedModel,
    TokenDelta,
    ToolCallDelta,
    quoted,
)


@dataclass
class ToolCallTally:
    id: str
    name: str
    arguments: str = ""

    def as_message(self) -> dict[str, Any]:
        """The call in the canonical (chat-template) form: what a later turn sends back."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass
class GenerationTally:
    prompt_tokens: int = 0  # the whole prompt, cached tokens included
    cached_tokens: int = 0  # of those, read from the prefix cache
    prompt: str = ""
    texts: dict[int, str] = field(default_factory=dict)
    reasoning: dict[int, str] = field(default_factory=dict)
    calls: dict[int, list[ToolCallTally]] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    finish: dict[int, ChoiceFinished] = field(default_factory=dict)
    error: ApiError | None = None
    first_output_at: float | None = None  # perf_counter() at the first generated token

    def add(self, event: Any) -> None:
        if self.first_output_at is None and isinstance(
            event, TokenDelta | ReasoningDelta | ToolCallDelta
        ):
            self.first_output_at = time.perf_counter()
        if isinstance(event, TokenDelta):
            self.texts[event.index] = self.texts.get(event.index, "") + event.text
            self.tokens[event.index] = self.tokens.get(event.index, 0) + event.tokens
        elif isinstance(event, ReasoningDelta):
            self.reasoning[event.index] = self.reasoning.get(event.index, "") + event.text
        elif isinstance(event, ToolCallDelta):
            calls = self.calls.setdefault(event.index, [])
            if event.call == len(calls):
                calls.append(ToolCallTally(event.id or "", event.name or ""))
            calls[event.call].arguments += event.arguments
        elif isinstance(event, GenerationStarted):
            self.prompt_tokens, self.prompt = event.prompt_tokens, event.prompt
            self.cached_tokens = event.cached_tokens
        elif isinstance(event, ChoiceFinished):
            self.finish[event.index] = event
        elif isinstance(event, ApiError):
            self.error = event

    @property
    def completion_tokens(self) -> int:
        return sum(self.tokens.values())

    @property
    def uncached_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens

    @property
    def reasoning_tokens(self) -> int:
        return sum(done.reasoning_tokens for done in self.finish.values())

    def text(self, index: int = 0) -> str:
        return self.texts.get(index, "")

    def reasoning_text(self, index: int = 0) -> str | None:
        return self.reasoning.get(index)

    def tool_calls(self, index: int = 0) -> list[ToolCallTally]:
        return self.calls.get(index, [])

    def finish_reason(self, index: int = 0) -> str | None:
        done = self.finish.get(index)
        return done.finish_reason if done else None

    def _choice(self, index: int) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "text": self.text(index),
            "finish_reason": self.finish_reason(index),
        }
        if index in self.reasoning:
            choice["reasoning"] = self.reasoning[index]
        if index in self.calls:
            choice["tool_calls"] = [call.as_message() for call in self.calls[index]]
        return choice

    def output(self, n: int) -> dict[str, Any]:
        """The history row's output: the text (with its reasoning and tool calls, when there
        are any), or every choice when n > 1."""
        if n == 1:
            return self._choice(0)
        return {"choices": [{"index": i, **self._choice(i)} for i in range(n)]}


DISCONNECTED = ApiError(499, "client_disconnected", "The client closed the stream early.")


def refuse_missing_features(request: InferenceRequest, model: ResolvedModel) -> None:
    """Reasoning and automatic tool choice need the model's parsers (the catalog names them);
    asking a model without them is a 400 that says so, not a silently plain answer."""
    if request.reasoning and model.reasoning_parser is None:
        raise ApiException(
            ApiError.invalid(
                f"Model {quoted(request.model_id)} does not reason: reasoning / thinking "
                "parameters are not supported for it (GET /base-models shows which models do).",
                "reasoning",
                status=400,
            )
        )
    tools = request.tools
    if tools is not None and tools.choice == "auto" and model.tool_parser is None:
        raise ApiException(
            ApiError.invalid(
                f"Model {quoted(request.model_id)} has no tool-call parser, so it cannot choose "
                "tools itself: use tool_choice 'required' (Anthropic: 'any') or name a function.",
                "tool_choice",
                status=400,
            )
        )
