"""Anthropic-compatible wire models (/v1/messages). Pydantic only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, model_validator

from app.wire.encoder_fields import EncoderFields


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Accepted on every block and tool; vLLM caches every prompt's prefix automatically, so a
# marker changes nothing here (prompt-caching.mdx: auto-caching models ignore it).
CacheControl = dict[str, Any] | None


class TextBlock(_Wire):
    type: Literal["text"]
    text: str
    cache_control: CacheControl = None
    citations: Any = None


class ToolUseBlock(_Wire):
    """A call the assistant made (sent back in the conversation)."""

    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: CacheControl = None
    # What the SDK's ToolUseBlock carries when a client sends the answer's blocks back.
    caller: dict[str, Any] | None = None
    toolset_name: str | None = None


class ToolResultBlock(_Wire):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[TextBlock] = ""
    is_error: bool = False
    cache_control: CacheControl = None


class ThinkingBlock(_Wire):
    """An earlier answer's thinking, sent back: accepted and not fed to the model (chat
    templates drop earlier turns' reasoning, as Anthropic's API ignores it there)."""

    type: Literal["thinking"]
    thinking: str
    signature: str | None = None
    cache_control: CacheControl = None


class RedactedThinkingBlock(_Wire):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Discriminator("type"),
]


def join_blocks(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.text for block in content if isinstance(block, TextBlock))


class Message(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    @model_validator(mode="after")
    def _blocks(self) -> Message:
        if isinstance(self.content, list):
            for block in self.content:
                if self.role == "user" and isinstance(
                    block, ToolUseBlock | ThinkingBlock | RedactedThinkingBlock
                ):
                    raise ValueError(f"a user message cannot hold a {block.type} block")
                if self.role == "assistant" and isinstance(block, ToolResultBlock):
                    raise ValueError("tool_result blocks go in a user message")
        return self


class Tool(_Wire):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: CacheControl = None


class ToolChoice(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise ValueError("tool_choice: type 'tool' and only it takes a name")
        return self


class ThinkingConfig(_Wire):
    type: Literal["enabled", "disabled", "adaptive"]
    # Anthropic asks for at least 1024; small self-hosted models have short contexts.
    budget_tokens: int | None = Field(None, ge=1)
    effort: str | None = None
    display: Literal["summarized", "omitted"] | None = None

    @model_validator(mode="after")
    def _budget(self) -> ThinkingConfig:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("thinking.budget_tokens is required when thinking is enabled")
        return self


class MessagesRequest(EncoderFields):
    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=131072)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, le=2**31 - 1)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    store: bool = True
    project_id: str | None = None

    @model_validator(mode="after")
    def _thinking_budget(self) -> MessagesRequest:
        budget = self.thinking.budget_tokens if self.thinking else None
        if budget is not None and budget >= self.max_tokens:
            raise ValueError("thinking.budget_tokens must be less than max_tokens")
        return self


class CountTokensRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
