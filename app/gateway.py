"""What the ingress routes call: resolve the model, run it on the right deployment.

Holds the downstream deployment handles; every failure comes out as an ApiException that the
route's format renders.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.history import records
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
    def __init__(
        self, resolver: Any, encoder: Any, decoders: dict[str, Any], recorder: Any
    ) -> None:
        self._resolver = resolver
        self._encoder = encoder
        self._decoders = decoders
        self._recorder = recorder

    async def resolve(self, model_id: str) -> ResolvedModel:
        try:
            resolved = await self._resolver.resolve.remote(model_id)
        except Exception as exc:
            raise _backend_down("model resolver", exc) from exc
        if isinstance(resolved, ApiError):
            raise ApiException(resolved)
        return resolved

    async def extract(self, request: InferenceRequest) -> InferenceResult:
        """Run it, then record it; the client gets its result once the record is durable."""
        started = time.perf_counter()
        created_at = records.now()
        model: ResolvedModel | None = None
        try:
            model = await self.resolve(request.model_id)
            result = await self._extract(request, model, started)
        except ApiException as exc:
            latency = (time.perf_counter() - started) * 1000
            await self._record_failure(request, created_at, model, exc.error, latency)
            raise
        await self._record(
            request,
            billing=records.billing_row(
                request, created_at, model=model, input_tokens=result.input_tokens
            ),
            history=records.inference_row(
                request, created_at, result=result, model=model, latency_ms=result.latency_ms
            ),
        )
        return result

    async def _record(
        self, request: InferenceRequest, billing: dict[str, Any], history: dict[str, Any]
    ) -> None:
        # store: false keeps the bill and drops the payload before it leaves this process.
        try:
            await self._recorder.record.remote(billing, history if request.store else None)
        except Exception as exc:
            raise ApiException(
                ApiError(
                    503,
                    "history_unavailable",
                    "The inference ran but could not be recorded, so it is not returned; "
                    "retry shortly.",
                )
            ) from exc

    async def _record_failure(
        self,
        request: InferenceRequest,
        created_at: Any,
        model: ResolvedModel | None,
        error: ApiError,
        latency_ms: float,
    ) -> None:
        try:
            await self._record(
                request,
                billing=records.billing_row(
                    request, created_at, model=model, input_tokens=0, failed=True
                ),
                history=records.inference_row(
                    request, created_at, model=model, error=error, latency_ms=latency_ms
                ),
            )
        except ApiException:
            logger.error("could not record failed inference %s", request.inference_id)

    async def _extract(
        self, request: InferenceRequest, model: ResolvedModel, started: float
    ) -> InferenceResult:
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

    async def history(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._recorder, method).remote(*args)
        except Exception as exc:
            raise _backend_down("history store", exc) from exc

    async def readiness(self) -> dict[str, Any]:
        try:
            return await self._resolver.readiness.remote()
        except Exception as exc:
            raise _backend_down("model resolver", exc) from exc
