"""Pioneer-native format: wire request <-> canonical types, and its error shape."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.generation import GenerationTally
from app.protocol import (
    ApiError,
    ApiException,
    ExtractOptions,
    InferenceRequest,
    InferenceResult,
    SamplingOptions,
)
from app.translators.schema import to_gliner2_schema
from app.wire.native import (
    EncoderInferenceRequest,
    EncoderInferenceResponse,
    GenerateInferenceRequest,
)

_encoder_adapter = TypeAdapter(EncoderInferenceRequest)
_generate_adapter = TypeAdapter(GenerateInferenceRequest)


def parse_request(body: Any) -> EncoderInferenceRequest | GenerateInferenceRequest:
    """Pick the request shape the way the contract does: by the presence of `messages`.

    Raises pydantic's ValidationError; the route renders it as a 422.
    """
    if not isinstance(body, dict):
        raise ValidationError.from_exception_data(
            "InferenceRequest",
            [{"type": "model_type", "loc": (), "input": body, "ctx": {"class_name": "object"}}],
        )
    if "messages" in body:
        return _generate_adapter.validate_python(body)
    return _encoder_adapter.validate_python(body)


def to_internal(
    wire: EncoderInferenceRequest,
    *,
    project_id: str | None,
    api_key_id: str | None,
    max_texts: int,
) -> InferenceRequest:
    texts = [wire.text] if isinstance(wire.text, str) else list(wire.text)
    if len(texts) > max_texts:
        message = f"text has {len(texts)} items; at most {max_texts} per request"
        raise ApiException(ApiError.invalid(message, "text"))
    return InferenceRequest(
        model_id=wire.model_id,
        task="extract",
        texts=texts,
        batched=isinstance(wire.text, list),
        schema=to_gliner2_schema(wire.schema_),
        options=ExtractOptions(
            threshold=wire.threshold,
            include_confidence=wire.include_confidence,
            include_spans=wire.include_spans,
        ),
        store=wire.store,
        # The route attributes the project (Principal.project_for); called alone, the body's.
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="native",
    )


def to_response(result: InferenceResult) -> dict[str, Any]:
    payload = result.results if result.request.batched else result.results[0]
    return EncoderInferenceResponse(
        inference_id=result.request.inference_id,
        result=payload,
        model_id=result.request.model_id,
        latency_ms=round(result.latency_ms, 3),
        token_usage=result.input_tokens,
        model_used=result.model.model_key,
    ).model_dump()


def to_error(error: ApiError) -> tuple[int, dict[str, Any]]:
    """errors.mdx, row by row: `detail`, except rate limits (`detail` + `code` + `scope`),
    billing denials (`code`, `message`, `resolution_url`) and unhandled errors."""
    if error.status == 429 and error.scope is not None:
        return 429, {"detail": error.message, "code": error.code, "scope": error.scope}
    if error.resolution_url is not None:
        return error.status, {
            "code": error.code,
            "message": error.message,
            "resolution_url": error.resolution_url,
        }
    if error.status == 500:
        return 500, {"error": "Internal server error", "message": error.message}
    return error.status, {"detail": error.message}


def validation_error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's `{"detail": [{loc, msg, type}]}`, the contract's ValidationErrorResponse."""
    return {
        "detail": [
            {"loc": list(error.get("loc", ())), "msg": error["msg"], "type": error["type"]}
            for error in errors
        ]
    }


def generate_to_internal(
    wire: GenerateInferenceRequest, *, project_id: str | None, api_key_id: str | None
) -> InferenceRequest:
    if wire.messages[-1].role != "user":
        raise ApiException(ApiError.invalid("the last message must have role 'user'", "messages"))
    stop = (wire.stop,) if isinstance(wire.stop, str) else tuple(wire.stop or ())
    return InferenceRequest(
        model_id=wire.model_id,
        task="generate",
        messages=[{"role": m.role, "content": m.text()} for m in wire.messages],
        sampling=SamplingOptions(
            max_tokens=wire.max_tokens, temperature=wire.temperature, top_p=wire.top_p, stop=stop
        ),
        reasoning=wire.reasoning is not None and wire.reasoning.wanted(),
        show_reasoning=wire.include_reasoning_trace,
        store=wire.store,
        project_id=project_id or wire.project_id,
        api_key_id=api_key_id,
        source="native",
    )


def generate_to_response(
    request: InferenceRequest, tally: GenerationTally, latency_ms: float
) -> dict[str, Any]:
    """Pioneer's token usage splits the input by cache status (prompt-caching.mdx):
    prompt_tokens are the uncached ones, and total_tokens sums the four counts."""
    body = {
        "type": "decoder",
        "inference_id": request.inference_id,
        "completion": tally.text(0),
        "model_id": request.model_id,
        "latency_ms": round(latency_ms, 3),
        "usage": {
            "prompt_tokens": tally.uncached_tokens,
            "cache_read_tokens": tally.cached_tokens,
            "cache_write_tokens": 0,
            "completion_tokens": tally.completion_tokens,
            "total_tokens": tally.prompt_tokens + tally.completion_tokens,
        },
        "finish_reason": tally.finish_reason(0),
    }
    if request.reasoning and request.show_reasoning:  # include_reasoning_trace
        body["reasoning_trace"] = tally.reasoning_text(0) or ""
    return body
