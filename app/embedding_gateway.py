"""What POST /v1/embeddings calls: resolve the model, run it on the embedder deployment,
record and bill it with the gateway's own helpers (app/gateway.py), so an embedding is
admitted, billed and kept (or not, with `store: false`) exactly as every other inference.
"""

from __future__ import annotations

import time
from typing import Any

from app.embedding_protocol import EmbeddingOutcome
from app.handle_calls import backend_down
from app.history import records
from app.protocol import ApiError, ApiException, InferenceRequest, ResolvedModel, quoted
from app.translators import embeddings

EMBEDDER = "embedder deployment"  # as deployments/embedder.py reports itself
KIND_NAMES = {"encoder": "a GLiNER2 encoder (extraction)", "decoder": "a decoder (LLM)"}


class EmbeddingGateway:
    def __init__(self, gateway: Any, embedder: Any | None) -> None:
        """`gateway`: the ingress's InferenceGateway; `embedder`: the embedder deployment's
        handle, or None when this server runs no embedding model."""
        self._gateway = gateway
        self._embedder = embedder

    async def embed(
        self, request: InferenceRequest, dimensions: int | None, encoding_format: str
    ) -> tuple[ResolvedModel, EmbeddingOutcome]:
        """Run it, then record it; the client gets the vectors once the record is durable. A
        failure is recorded (and billed at zero) under the request's inference id."""
        gateway = self._gateway
        await gateway.admit_spend(request)
        started = time.perf_counter()
        created_at = records.now()
        model: ResolvedModel | None = None
        try:
            model = await gateway.resolve(request.model_id)
            outcome = await self._run(request, model, dimensions)
        except ApiException as exc:
            latency = (time.perf_counter() - started) * 1000
            await gateway.record_failure(request, created_at, model, exc.error, latency)
            raise ApiException(exc.error, request.inference_id) from exc
        latency = (time.perf_counter() - started) * 1000
        await gateway.record(
            request,
            billing=records.billing_row(
                request, created_at, model=model, input_tokens=outcome.input_tokens
            ),
            history=records.inference_row(
                request,
                created_at,
                model=model,
                output=embeddings.stored_output(outcome.vectors, encoding_format),
                input_tokens=outcome.input_tokens,
                latency_ms=latency,
            ),
        )
        return model, outcome

    async def _run(
        self, request: InferenceRequest, model: ResolvedModel, dimensions: int | None
    ) -> EmbeddingOutcome:
        if model.kind != "embedding":
            raise ApiException(
                ApiError.invalid(
                    f"Model {quoted(request.model_id)} is not an embedding model: it is "
                    f"{KIND_NAMES.get(model.kind, model.kind)}. GET /v1/models lists the "
                    "models of task_type embedding.",
                    "model",
                    status=400,
                )
            )
        if self._embedder is None:
            raise ApiException(
                ApiError.model_unavailable(f"{quoted(model.model_id)} is not deployed here.")
            )
        call = embeddings.to_call(request, model, dimensions)
        try:
            response = self._embedder.embed.remote(call)
        except Exception as exc:
            raise backend_down(EMBEDDER, exc, self._gateway.retry_after_s) from exc
        outcome = await self._gateway.call(response, EMBEDDER)
        if isinstance(outcome, ApiError):
            raise ApiException(outcome)
        assert isinstance(outcome, EmbeddingOutcome)
        return outcome
