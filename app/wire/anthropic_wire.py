"""Anthropic-compatible wire models (/v1/messages). Pydantic only."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.wire.encoder_fields import EncoderFields


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextBlock(_Wire):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None  # accepted; this server caches nothing
    citations: Any = None


def join_blocks(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(b.text for b in content)


class Message(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[TextBlock]


class MessagesRequest(EncoderFields):
    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=131072)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, le=2**31 - 1)
    metadata: dict[str, Any] | None = None
    stream: bool = False
    store: bool = True
    project_id: str | None = None


class CountTokensRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
