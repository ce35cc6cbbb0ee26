"""Pioneer-native wire models (POST /inference). Pydantic only: no engine imports.

Strict types: a number sent as a string, or a list where a string belongs, is a 422 that
names the field, not a silent coercion.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
)

from app.wire.extraction_schema import (
    UNION_TAGS,
    ExtractionSchema,
    WireModel,
    by_shape,
    reject_blank,
    reject_duplicates,
)
from app.wire.reasoning import ReasoningConfig

__all__ = ["UNION_TAGS", "ExtractionSchema"]


TextInput = by_shape(list[str], str)


def check_texts(text: str | list[str]) -> str | list[str]:
    if isinstance(text, str):
        if not text.strip():
            raise ValueError("text must not be empty")
        return text
    if not text:
        raise ValueError("text list must not be empty")
    for index, item in enumerate(text):
        if not item.strip():
            raise ValueError(f"text[{index}] must not be empty")
    return text


Texts = Annotated[TextInput, AfterValidator(check_texts)]


def check_flat_schema(schema: ExtractionSchema | list[str]) -> ExtractionSchema | list[str]:
    if isinstance(schema, list):
        if not schema:
            raise ValueError("schema is empty: give at least one entity label")
        reject_blank(schema, "entity")
        reject_duplicates(schema, "entity label")
    return schema


# The unified schema dict, or the deprecated flat label list (every door takes both).
SchemaInput = Annotated[by_shape(list[str], ExtractionSchema), AfterValidator(check_flat_schema)]


class EncoderInferenceRequest(WireModel):
    model_id: str = Field(min_length=1)
    text: Texts = Field(description="One text, or a list of texts for batch processing.")
    schema_: SchemaInput = Field(
        alias="schema", description="Unified schema dict, or the deprecated flat label list."
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    include_confidence: bool = True
    include_spans: bool = True
    store: bool = True
    project_id: str | None = None


class ContentBlock(WireModel):
    """A message's content as blocks, so a block can carry a `cache_control` marker
    (prompt-caching.mdx). vLLM caches prefixes automatically: the marker changes nothing."""

    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None


class ChatMessage(WireModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentBlock]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(block.text for block in self.content)


class GenerateInferenceRequest(WireModel):
    model_id: str = Field(min_length=1)
    task: Literal["generate"]
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=131072)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: str | list[str] | None = None
    reasoning: ReasoningConfig | None = None
    include_reasoning_trace: bool = False
    store: bool = True
    project_id: str | None = None


class EncoderInferenceResponse(BaseModel):
    type: Literal["encoder"] = "encoder"
    inference_id: str
    result: dict[str, Any] | list[dict[str, Any]]
    model_id: str
    latency_ms: float
    token_usage: int
    model_used: str
