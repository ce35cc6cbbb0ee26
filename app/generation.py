"""Running a generation through a decoder deployment, with its accounting.

The stream of engine events goes to the caller's translator as it arrives; what was generated
is tallied on the way so the record and the bill are right however the stream ends: finished,
failed, or cut off by the client (billed for the tokens generated so far).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.protocol import ApiError, ChoiceFinished, GenerationStarted, TokenDelta


@dataclass
class GenerationTally:
    prompt_tokens: int = 0
    prompt: str = ""
    texts: dict[int, str] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    finish: dict[int, ChoiceFinished] = field(default_factory=dict)
    error: ApiError | None = None

    def add(self, event: Any) -> None:
        if isinstance(event, GenerationStarted):
            self.prompt_tokens, self.prompt = event.prompt_tokens, event.prompt
        elif isinstance(event, TokenDelta):
            self.texts[event.index] = self.texts.get(event.index, "") + event.text
            self.tokens[event.index] = self.tokens.get(event.index, 0) + event.tokens
        elif isinstance(event, ChoiceFinished):
            self.finish[event.index] = event
        elif isinstance(event, ApiError):
            self.error = event

    @property
    def completion_tokens(self) -> int:
        return sum(self.tokens.values())

    def text(self, index: int = 0) -> str:
        return self.texts.get(index, "")

    def finish_reason(self, index: int = 0) -> str | None:
        done = self.finish.get(index)
        return done.finish_reason if done else None

    def output(self, n: int) -> dict[str, Any]:
        """The history row's output: the text, or every choice when n > 1."""
        if n == 1:
            return {"text": self.text(0), "finish_reason": self.finish_reason(0)}
        return {
            "choices": [
                {"index": i, "text": self.text(i), "finish_reason": self.finish_reason(i)}
                for i in range(n)
            ]
        }


DISCONNECTED = ApiError(499, "client_disconnected", "The client closed the stream early.")
