"""POST /v1/embeddings, OpenAI's request body plus Pioneer's store/project fields. Pydantic
only (no torch, ray or engine imports).

Unknown fields are refused (400), as on the other OpenAI routes. `input` is checked here for
shape, emptiness and count, with messages that name the position and never quote the text.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
SHAPE = (
    "input must be a string, an array of strings, an array of token ids (integers), or an "
    "array of token-id arrays"
)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_input(value: Any) -> Any:
    """The shapes OpenAI takes, none of them empty: "" and [] (or [[]]) are refused."""
    if isinstance(value, str):
        if not value:
            raise ValueError("input must not be an empty string")
        return value
    if not isinstance(value, list):
        raise ValueError(SHAPE)
    if not value:
        raise ValueError("input must not be an empty array")
    if len(value) > MAX_INPUTS:
        raise ValueError(f"input holds {len(value)} items; at most {MAX_INPUTS} per request")
    if all(isinstance(item, str) for item in value):
        empty = next((i for i, item in enumerate(value) if not item), None)
        if empty is not None:
            raise ValueError(f"input[{empty}] is an empty string; every input needs text")
        return value
    if all(_is_token(item) for item in value):
        return value
    if all(isinstance(item, list) for item in value):
        for index, item in enumerate(value):
            if not item:
                raise ValueError(f"input[{index}] is an empty token array")
            if not all(_is_token(token) for token in item):
                raise ValueError(f"input[{index}] must be an array of token ids (integers)")
        return value
    raise ValueError(SHAPE + " (one kind, not mixed)")


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="An embedding model id (GET /v1/models).")
    input: str | list[str] | list[StrictInt] | list[list[StrictInt]] = Field(
        description="Text, texts, or token ids of the model's tokenizer (without the special "
        f"tokens the model adds), or arrays of them; at most {MAX_INPUTS} inputs, none empty.",
    )
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: arrays of numbers; base64: little-endian float32 bytes."
    )
    dimensions: StrictInt | None = Field(
        None, ge=1, description="Must equal the model's size: this model cannot shorten vectors."
    )
    user: str | None = Field(None, description="End-user id (accepted, not used).")
    store: bool = Field(True, description="False: nothing of the payload is kept in history.")
    metadata: dict[str, str] | None = None
    project_id: str | None = Field(None, description="Pioneer: the project to attribute it to.")

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> Any:
        return check_input(value)

    def texts(self) -> list[str] | None:
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return list(self.input)  # type: ignore[arg-type]
        return None

    def token_ids(self) -> list[list[int]] | None:
        if isinstance(self.input, str) or isinstance(self.input[0], str):
            return None
        if isinstance(self.input[0], int):
            return [list(self.input)]  # type: ignore[arg-type]
        return [list(item) for item in self.input]  # type: ignore[union-attr]

    @property
    def batched(self) -> bool:
        """An array of inputs (answered item by item) rather than one input."""
        return isinstance(self.input, list) and not isinstance(self.input[0], int)
