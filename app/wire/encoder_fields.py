"""Pioneer's encoder extension, accepted as extra body fields by every chat-shaped format."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EncoderFields(BaseModel):
    """`schema` (and its options) turn a chat-shaped call to a GLiNER2 model into extraction."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: dict[str, Any] | list[str] | None = Field(
        None, alias="schema", description="Extraction schema, as on POST /inference."
    )
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    include_confidence: bool | None = None
    include_spans: bool | None = None

    def encoder_fields_set(self) -> set[str]:
        return {
            name
            for name in ("schema_", "threshold", "include_confidence", "include_spans")
            if getattr(self, name) is not None
        }
