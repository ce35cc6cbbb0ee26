"""Reasoning controls as Pioneer normalises them (openapi ReasoningConfig). Pydantic only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class ReasoningConfig(BaseModel):
    """Pioneer's normalised reasoning controls (openapi ReasoningConfig), also what
    OpenRouter-style clients send on chat completions."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    effort: Effort | None = None
    max_tokens: int | None = Field(None, ge=1)
    mode: Literal["manual", "adaptive"] | None = None
    display: Literal["summarized", "omitted"] | None = None
    exclude: bool = False

    @model_validator(mode="after")
    def _exclusive(self) -> ReasoningConfig:
        if self.effort is not None and self.max_tokens is not None:
            raise ValueError("reasoning: effort and max_tokens are mutually exclusive")
        return self

    def wanted(self) -> bool:
        return self.enabled and self.effort != "none"

    def shown(self) -> bool:
        return not self.exclude and self.display != "omitted"
