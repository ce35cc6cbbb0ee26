"""Wire models of the history endpoints (feedback bodies). Pydantic only."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeedbackRequest(BaseModel):
    """`{verdict, corrected_output?, notes?}`, or the older `{correction: {...}}`."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["correct", "incorrect"] | None = None
    corrected_output: Any = None
    notes: str | None = Field(None, max_length=5000)
    correction: Any = Field(None, description="Older form: the corrected output.")

    @model_validator(mode="after")
    def _shape(self) -> FeedbackRequest:
        if self.correction is not None:
            if self.verdict == "correct" or self.corrected_output is not None:
                raise ValueError("send either correction, or verdict with corrected_output")
            self.verdict, self.corrected_output, self.correction = (
                "incorrect",
                self.correction,
                None,
            )
        if self.verdict is None:
            raise ValueError("verdict is required (correct or incorrect)")
        if self.verdict == "incorrect" and self.corrected_output is None:
            raise ValueError("corrected_output is required when verdict is incorrect")
        return self


class FeedbackResponse(BaseModel):
    inference_id: str
    human_verdict: str
    human_feedback_at: str
