"""What the ingress routes call: resolve the model, run it on the right deployment.

Holds the downstream deployment handles; every failure comes out as an ApiException that the
route's format renders.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.protocol import (
    ApiError,
    ApiException,
    ExtractionCall,
    ExtractionOutcome,
    InferenceRequest,
    InferenceResult,
    ResolvedModel,
)

logger = logging.getLogger("ray.serve")


def _backend_down(what: str, exc: Exception) -> ApiException:
    logger.error("%s call failed: %s", what, type(exc).__name__)
    return ApiException(
        ApiError(503, "backend_unavailable", f"The {what} is unavailable right now; retry shortly.")
    )


class InferenceGateway:
    def __init__(self, resolver: Any, encoder: Any) -> None:
        self._resolver = resolver
        self._encoder = encoder

    async def resolve(self, model_id: str) -> ResolvedModel:
        try:
            resolved = await self._resolver.resolve.remote(model_id)
        except Exception as exc:
            raise _backend_down("model resolver", exc) from exc
        if isinstance(resolved, ApiError):
            raise ApiException(resolved)
        return resolved

    async def extract(self, request: InferenceRequest) -> InferenceResult:
        started = time.perf_counter()
        model = await self.resolve(request.model_id)
        if model.kind != "encoder":
            raise ApiException(
                ApiError.invalid(
                    f"Model {request.model_id!r} is a decoder (LLM): send task 'generate' "
                    "with messages instead of text and schema.",
                    "model_id",
                    status=400,
                )
            )
        assert request.schema is not None
        call = ExtractionCall(model, request.texts, request.schema, request.options)
        try:
            outcome = await self._encoder.options(
                multiplexed_model_id=model.model_key
            ).extract.remote(call)
        except Exception as exc:
            raise _backend_down("encoder deployment", exc) from exc
        if isinstance(outcome, ApiError):
            raise ApiException(outcome)
        assert isinstance(outcome, ExtractionOutcome)
        return InferenceResult(
            request=request,
            model=model,
            results=outcome.results,
            input_tokens=outcome.input_tokens,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def generate_unsupported(self, model_id: str) -> None:
        """Decoder generation arrives with the vLLM deployment; say so precisely."""
        model = await self.resolve(model_id)
        if model.kind == "encoder":
            raise ApiException(
                ApiError.invalid(
                    f"Model {model_id!r} is an encoder (GLiNER2): send text and schema, "
                    "not task 'generate' with messages.",
                    "model_id",
                    status=400,
                )
            )
        raise ApiException(
            ApiError(501, "not_implemented", "Decoder generation is not served yet.")
        )

    async def list_models(self, include_jobs: bool) -> list[dict[str, Any]]:
        try:
            return await self._resolver.list_models.remote(include_jobs)
        except Exception as exc:
            raise _backend_down("model resolver", exc) from exc

    async def readiness(self) -> dict[str, Any]:
        try:
            return await self._resolver.readiness.remote()
        except Exception as exc:
            raise _backend_down("model resolver", exc) from exc
