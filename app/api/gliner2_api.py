"""POST /gliner-2: the door the gliner2 SDK's `GLiNER2API` (`GLiNER2.from_api()`) calls.

No model_id on the wire: the model is the server's setting (`gliner2_api.model_id`), or the
API key's own (`gliner2_model` in the keys file). Same engine, grouping, history, billing,
`store`, limits and auth as POST /inference; errors in the native shape, which the client
reads (`detail`; Retry-After on 429/503 for its retries).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.auth import Principal, authenticate
from app.api.json_body import read_json
from app.api.native import body_validation_error
from app.api.state import current
from app.translators import gliner2_sdk
from app.wire.extraction_schema import UNION_TAGS
from app.wire.gliner2_sdk import Gliner2Request

router = APIRouter(tags=["gliner2"])


@router.post("/gliner-2", summary="Run a gliner2 SDK task (GLiNER2API)")
@router.post("/gliner-2/{task}", include_in_schema=False)
async def gliner2(
    request: Request, task: str | None = None, principal: Principal = Depends(authenticate)
) -> JSONResponse:
    state = current()
    body = await read_json(request, state.limits.max_body_bytes)
    if task is not None and isinstance(body, dict):  # /gliner-2/<task>: the task in the path
        body = {"task": task, **body}
    try:
        wire = Gliner2Request.model_validate(body)
    except ValidationError as exc:
        raise body_validation_error(exc) from None
    try:
        internal = gliner2_sdk.to_internal(
            wire,
            model_id=principal.gliner2_model or state.gliner2_model,
            project_id=principal.project_for(wire.project_id),
            api_key_id=principal.key_id,
            max_texts=state.limits.max_texts_per_request,
        )
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *(p for p in error["loc"] if p not in UNION_TAGS))}
            for error in gliner2_sdk.schema_errors(exc)
        ]
        raise RequestValidationError(errors) from None
    result = await state.gateway.extract(internal)
    return JSONResponse(
        gliner2_sdk.to_response(result), headers={"X-Inference-Id": internal.inference_id}
    )
