"""POST /inference: the Pioneer-native door."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.auth import Principal, authenticate
from app.api.errors import read_json
from app.api.state import current
from app.translators import native
from app.wire.native import (
    UNION_TAGS,
    EncoderInferenceRequest,
    EncoderInferenceResponse,
    GenerateInferenceRequest,
)

router = APIRouter(tags=["inference"])

_REQUEST_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        EncoderInferenceRequest.model_json_schema(by_alias=True),
                        GenerateInferenceRequest.model_json_schema(),
                    ]
                }
            }
        },
    }
}


def body_validation_error(exc: ValidationError) -> RequestValidationError:
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(part for part in error["loc"] if part not in UNION_TAGS)
        errors.append({**error, "loc": ("body", *loc)})
    return RequestValidationError(errors)


@router.post(
    "/inference",
    response_model=EncoderInferenceResponse,
    openapi_extra=_REQUEST_SCHEMA,
    summary="Run inference (Pioneer native)",
)
async def run_inference(
    request: Request, principal: Principal = Depends(authenticate)
) -> JSONResponse:
    state = current()
    body = await read_json(request, state.limits.max_body_bytes)
    try:
        wire = native.parse_request(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None
    if isinstance(wire, GenerateInferenceRequest):
        await state.gateway.generate_unsupported(wire.model_id)
        raise AssertionError("unreachable")
    internal = native.to_internal(
        wire,
        project_id=principal.project_id,
        api_key_id=principal.key_id,
        max_texts=state.limits.max_texts_per_request,
    )
    result = await state.gateway.extract(internal)
    return JSONResponse(
        native.to_response(result), headers={"X-Inference-Id": internal.inference_id}
    )
