"""POST /inference: the Pioneer-native door."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.auth import Principal, authenticate
from app.api.json_body import read_json
from app.api.state import current
from app.generation import GenerationTally
from app.protocol import ApiException
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
        return await _generate(wire, principal)
    internal = native.to_internal(
        wire,
        project_id=principal.project_for(wire.project_id),
        api_key_id=principal.key_id,
        max_texts=state.limits.max_texts_per_request,
    )
    result = await state.gateway.extract(internal)
    return JSONResponse(
        native.to_response(result), headers={"X-Inference-Id": internal.inference_id}
    )


async def _generate(wire: GenerateInferenceRequest, principal: Principal) -> JSONResponse:
    internal = native.generate_to_internal(
        wire, project_id=principal.project_for(wire.project_id), api_key_id=principal.key_id
    )
    started = time.perf_counter()
    tally = GenerationTally()
    async for _ in current().gateway.generate(internal, tally):
        pass
    if tally.error is not None:
        raise ApiException(tally.error)
    latency = (time.perf_counter() - started) * 1000
    return JSONResponse(
        native.generate_to_response(internal, tally, latency),
        headers={"X-Inference-Id": internal.inference_id},
    )
