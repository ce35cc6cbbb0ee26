"""What crosses the handle between the ingress and the embedder deployment.

Plain dataclasses like `app.protocol`'s (picklable, no torch, ray or wire models); kept in a
module of their own so the embedding flow touches no other flow's types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.protocol import ResolvedModel


@dataclass(frozen=True)
class EmbeddingCall:
    """Embed `texts`, or `token_ids` (each input's token ids, without the special tokens the
    model adds around a sequence): exactly one of them is set, in the client's order."""

    model: ResolvedModel
    texts: list[str] | None = None
    token_ids: list[list[int]] | None = None
    dimensions: int | None = None  # the client's `dimensions`; None: the model's own

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.token_ids or [])


@dataclass(frozen=True)
class EmbeddingOutcome:
    vectors: Any  # numpy float32 array, one row per input, in the call's order
    input_tokens: int  # tokens of the inputs, special tokens not counted (what is billed)
    engine_ms: float
