"""OpenAI's embeddings format <-> the canonical request, as pure functions.

Errors render through `openai_format.to_error` (every /v1/ route but /v1/messages answers in
OpenAI's shape: app/api/errors.py).

History keeps the input (unless `store: false`) but not the vectors: they are a function of
the model and the input, and at 384 float32 numbers (about 8 KB of JSON) per input they would
outweigh the text 20 to 40 times. The stored output says what was returned instead.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from app.embedding_protocol import EmbeddingCall
from app.protocol import ApiError, ApiException, InferenceRequest, ResolvedModel
from app.translators.openai_format import pioneer
from app.wire.embeddings_wire import EmbeddingRequest


def to_internal(
    wire: EmbeddingRequest,
    *,
    project_id: str | None,
    api_key_id: str | None,
    max_inputs: int | None = None,
) -> InferenceRequest:
    """The canonical request; over the server's `limits.max_texts_per_request` is a 400."""
    texts, token_ids = wire.texts(), wire.token_ids()
    count = len(texts if texts is not None else token_ids or [])
    if max_inputs is not None and count > max_inputs:
        raise ApiException(
            ApiError.invalid(
                f"input holds {count} items; this server takes at most {max_inputs} per request. "
                "Split them across requests.",
                "input",
                status=400,
            )
        )
    return InferenceRequest(
        model_id=wire.model,
        task="embed",
        texts=texts or [],
        token_ids=token_ids,
        batched=wire.batched,
        store=wire.store,
        project_id=project_id,
        api_key_id=api_key_id,
        source="openai.embeddings",
    )


def to_call(
    request: InferenceRequest, model: ResolvedModel, dimensions: int | None
) -> EmbeddingCall:
    texts = None if request.token_ids is not None else request.texts
    return EmbeddingCall(model, texts, request.token_ids, dimensions)


def encode_base64(vector: Any) -> str:
    """What the openai SDK decodes: the float32 values' little-endian bytes, base64."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def to_response(
    request: InferenceRequest,
    model_name: str,
    vectors: Any,
    input_tokens: int,
    encoding_format: str = "float",
) -> dict[str, Any]:
    """OpenAI's CreateEmbeddingResponse, items in input order, plus `x_pioneer`. Floats are
    the float32 values exactly (a base64 answer decodes to the same numbers)."""
    rows = np.asarray(vectors, dtype=np.float32)
    if encoding_format == "base64":
        embeddings: list[Any] = [encode_base64(row) for row in rows]
    else:
        embeddings = rows.tolist()
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": embedding}
            for index, embedding in enumerate(embeddings)
        ],
        "model": model_name,
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
        "x_pioneer": pioneer(request),
    }


def stored_output(vectors: Any, encoding_format: str) -> dict[str, Any]:
    """The history record's output: the answer's shape, not the vectors (see the module)."""
    count, dimensions = np.asarray(vectors).reshape(len(vectors), -1).shape
    return {
        "object": "list",
        "count": int(count),
        "dimensions": int(dimensions),
        "encoding_format": encoding_format,
    }
