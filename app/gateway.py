"""What the ingress routes call: resolve the model, run it on the right deployment.

Holds the downstream deployment handles; every failure comes out as an ApiException that the
route's format renders.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from app import metrics
from app.admission import Admissions
from app.config import LimitsConfig
from app.generation import DISCONNECTED, GenerationTally, refuse_missing_features
from app.grouping import Grouped
from app.handle_calls import WARMING_KNOWN, assigned, backend_down
from app.history import records
from app.model_cache import ResolvedCache
from app.protocol import (
    ApiError,
    ApiException,
    ExtractionCall,
    ExtractionOutcome,
    GenerationCall,
    GenerationEvent,
    InferenceRequest,
    InferenceResult,
    ResolvedModel,
    quoted,
)

logger = logging.getLogger("ray.serve")
ENCODER_GROUP_MAX = 32  # requests per call


_pending: set[asyncio.Future] = set()  # records finishing after their client went away


def _unrecorded(
    request: InferenceRequest, retry_after_s: int | None = None, *, certain: bool = True
) -> ApiException:
    """The inference ran, but its result is withheld: it could not be recorded (certain), or
    the history store was lost while recording it (it may have been kept: the record, under
    the X-Inference-Id sent with this error, says whether, before a retry runs it again)."""
    if certain:
        message = "The inference ran but could not be recorded, so it is not returned."
    else:
        message = (
            "The inference ran but the history store was lost while recording it: it may "
            f"or may not have been kept. GET /inferences/{request.inference_id} tells; retry "
            "only if it is not there."
        )
    return ApiException(
        ApiError(503, "history_unavailable", message, retry_after_s=retry_after_s),
        request.inference_id,
    )


WHAT_EACH_KIND_DOES = {
    "encoder": "is an encoder (GLiNER2): it extracts with a schema and does not generate text",
    "decoder": "is a decoder (LLM): send task 'generate' with messages instead of text and schema",
    "embedding": "is an embedding model: POST /v1/embeddings with its input",
}


def wrong_kind(model_id: str, model: ResolvedModel) -> str:
    return f"Model {quoted(model_id)} {WHAT_EACH_KIND_DOES[model.kind]}."


async def _flatten(batches: Any) -> AsyncIterator[GenerationEvent]:
    """The decoder sends lists of events (see DecoderDeployment.generate)."""
    async for batch in batches:
        for event in batch:
            yield event


class InferenceGateway:
    def __init__(
        self,
        resolver: Any,
        encoder: Any,
        decoders: dict[str, Any],
        recorder: Any,
        limits: LimitsConfig | None = None,
        admissions: Admissions | None = None,
    ) -> None:
        self._resolver = resolver
        self._admissions = admissions
        self._encoder = encoder
        self._decoders = decoders
        self._recorder = recorder
        self._limits = limits or LimitsConfig()
        self._models = ResolvedCache(self._ask_resolver)
        # Per model key, made once: concurrent requests' calls share one handle call.
        self._extractions: dict[str, Grouped[ExtractionCall, ExtractionOutcome | ApiError]] = {}
        self._decoder_streams = {key: h.options(stream=True) for key, h in decoders.items()}
        self._records: Grouped[tuple[dict, dict | None], bool] = Grouped(self._send_records)

    @property
    def retry_after_s(self) -> int:
        """What a 503 for a lost or full deployment tells the client to wait."""
        return self._limits.retry_after_s

    async def call(self, response: Any, what: str) -> Any:
        """A unary handle call: a bounded wait for a replica, then its answer. A lost or
        overloaded deployment is a 503 (ApiException); ApiErrors it returns pass through."""
        try:
            await assigned(response, what, self._limits, self._warming)
            return await response
        except ApiException:
            raise
        except Exception as exc:
            raise backend_down(what, exc, self._limits.retry_after_s) from exc

    async def _warming(self, what: str) -> bool:
        """Whether `what` has never had a replica up, by the resolver, which its replicas
        report to. Unknown (no answer) counts as not warming: the plain 503 stands."""
        if what not in WARMING_KNOWN:
            return False
        try:
            started = await asyncio.wait_for(self._resolver.started.remote(what), 1.0)
        except Exception:
            return False
        return not started

    async def resolve(self, model_id: str) -> ResolvedModel:
        """From this replica's cache of the resolver's answers (app/model_cache.py)."""
        model = await self._models.resolve(model_id)
        metrics.note_model(model.model_id)  # the request's `model` label: a catalog id
        return model

    async def _ask_resolver(self, model_id: str) -> ResolvedModel | ApiError:
        return await self.call(self._resolver.resolve.remote(model_id), "model resolver")

    async def extract(
        self, request: InferenceRequest, model: ResolvedModel | None = None
    ) -> InferenceResult:
        """Run it, then record it; the client gets its result once the record is durable.
        `model` skips the resolver hop when the caller has resolved it already."""
        await self.admit_spend(request)
        started = time.perf_counter()
        created_at = records.now()
        try:
            model = model or await self.resolve(request.model_id)
            result = await self._extract(request, model, started)
        except ApiException as exc:
            latency = (time.perf_counter() - started) * 1000
            await self.record_failure(request, created_at, model, exc.error, latency)
            # A new exception: a grouped call's failure is one object shared by its callers.
            raise ApiException(exc.error, request.inference_id) from exc
        await self.record(
            request,
            billing=records.billing_row(
                request, created_at, model=model, input_tokens=result.input_tokens
            ),
            history=records.inference_row(
                request,
                created_at,
                model=model,
                output=result.results if request.batched else result.results[0],
                input_tokens=result.input_tokens,
                latency_ms=result.latency_ms,
            ),
        )
        return result

    async def record(
        self, request: InferenceRequest, billing: dict[str, Any], history: dict[str, Any]
    ) -> None:
        """Durable when it returns. Shielded: a caller that goes away (a client hang-up
        cancels its task) does not stop the bill and the record from being written."""

        # store: false keeps the bill and drops the payload before it leaves this process.
        async def send() -> bool:
            return await self._records.submit((billing, history if request.store else None))

        # A fresh context: Ray Serve cancels the calls a cancelled request made (a client
        # hang-up cancels the ingress request), and this one must outlive it.
        task = asyncio.get_running_loop().create_task(send(), context=contextvars.Context())
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        try:
            kept = await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except ApiException as exc:  # the Recorder was lost: the rows may or may not be kept
            raise _unrecorded(request, exc.error.retry_after_s, certain=False) from exc
        metrics.tokens_billed(request.source, billing)  # durable: billed
        if self._admissions is not None:
            self._admissions.charged(billing)
        if not kept:  # billed, but the history row was refused: do not pretend it was stored
            raise _unrecorded(request)

    async def admit_spend(self, request: InferenceRequest) -> None:
        """A project whose credit budget is spent is refused (402/403) before anything runs,
        and nothing is recorded: no inference happened."""
        if self._admissions is not None:
            await self._admissions.admit_spend(request.project_id)

    def _grouped_extractions(
        self, model: ResolvedModel
    ) -> Grouped[ExtractionCall, ExtractionOutcome | ApiError]:
        encoder = self._encoder.options(multiplexed_model_id=model.model_key)

        async def send(calls: list[ExtractionCall]) -> list[ExtractionOutcome | ApiError]:
            return await self.call(encoder.extract_many.remote(calls), "encoder deployment")

        return Grouped(
            send,
            max_in_flight=self._limits.encoder_calls_in_flight,
            max_items=ENCODER_GROUP_MAX,
            overlap_at=self._limits.encoder_overlap_texts,
            weight=lambda call: len(call.texts),
        )

    async def _send_records(self, entries: list[tuple[dict, dict | None]]) -> list[bool]:
        """One Recorder call for the records of concurrent requests (app/grouping.py)."""
        return await self.call(self._recorder.record_many.remote(entries), "history store")

    async def record_failure(
        self,
        request: InferenceRequest,
        created_at: Any,
        model: ResolvedModel | None,
        error: ApiError,
        latency_ms: float,
    ) -> None:
        try:
            await self.record(
                request,
                billing=records.billing_row(
                    request, created_at, model=model, input_tokens=0, failed=True
                ),
                history=records.inference_row(
                    request, created_at, model=model, error=error, latency_ms=latency_ms
                ),
            )
        except (ApiException, asyncio.CancelledError):
            logger.error("could not record failed inference %s", request.inference_id)

    async def _extract(
        self, request: InferenceRequest, model: ResolvedModel, started: float
    ) -> InferenceResult:
        if model.kind != "encoder":
            raise ApiException(ApiError.invalid(wrong_kind(request.model_id, model), "model_id"))
        assert request.schema is not None
        call = ExtractionCall(model, request.texts, request.schema, request.options)
        extractions = self._extractions.get(model.model_key)
        if extractions is None:  # keys come from the resolver (catalog and jobs), not clients
            extractions = self._extractions[model.model_key] = self._grouped_extractions(model)
        outcome = await extractions.submit(call)
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

    async def generate(
        self,
        request: InferenceRequest,
        tally: GenerationTally,
        model: ResolvedModel | None = None,
    ) -> AsyncIterator[GenerationEvent]:
        """Engine events as they come. The first is GenerationStarted or an ApiException is
        raised (so a caller can still answer with a plain error); after that, errors arrive
        as ApiError events. Recorded and billed when the stream ends, however it ends."""
        await self.admit_spend(request)
        started = time.perf_counter()
        created_at = records.now()
        handle_stream: Any = None
        try:
            model = model or await self.resolve(request.model_id)
            handle_stream = self._open_stream(request, model)
            await assigned(handle_stream, "decoder deployment", self._limits, self._warming)
            stream = _flatten(handle_stream)
            first = await anext(stream)
        except asyncio.CancelledError:  # the client left while the request queued or prefilled
            if handle_stream is not None:
                handle_stream.cancel()
            await self.record_failure(request, created_at, model, DISCONNECTED, 0.0)
            raise
        except ApiException as exc:
            await self.record_failure(request, created_at, model, exc.error, 0.0)
            raise ApiException(exc.error, request.inference_id) from exc
        except StopAsyncIteration:
            error = ApiError.internal("the decoder returned nothing")
            await self.record_failure(request, created_at, model, error, 0.0)
            raise ApiException(error, request.inference_id) from None
        except Exception as exc:  # the deployment itself failed (overloaded, died)
            failure = backend_down("decoder deployment", exc, self._limits.retry_after_s)
            await self.record_failure(request, created_at, model, failure.error, 0.0)
            raise ApiException(failure.error, request.inference_id) from exc
        if isinstance(first, ApiError):
            handle_stream.cancel()
            await self.record_failure(request, created_at, model, first, 0.0)
            raise ApiException(first, request.inference_id)
        tally.add(first)
        ended = False
        try:
            yield first
            try:
                async for event in stream:
                    tally.add(event)
                    yield event
            except (ApiException, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # a replica lost mid-stream: an error event, not a crash
                error = backend_down("decoder deployment", exc, self._limits.retry_after_s).error
                tally.add(error)
                yield error
            ended = True
        finally:
            if not ended:  # the client left, or the stream failed: record what there was
                handle_stream.cancel()  # reaches the replica as a cancellation: vLLM aborts
                tally.error = tally.error or DISCONNECTED
                try:  # _record is shielded: a hang-up does not stop the bill being written
                    await self._record_generation(request, created_at, model, tally, started)
                except (asyncio.CancelledError, ApiException):
                    logger.error("could not record cut stream %s", request.inference_id)
        try:
            await self._record_generation(request, created_at, model, tally, started)
        except ApiException as exc:  # the stream is under way: its last event says so
            tally.add(exc.error)
            yield exc.error

    def _open_stream(self, request: InferenceRequest, model: ResolvedModel) -> Any:
        if model.kind != "decoder":
            raise ApiException(
                ApiError.invalid(wrong_kind(request.model_id, model), "model", status=400)
            )
        handle = self._decoder_streams.get(model.model_id)
        if handle is None:
            raise ApiException(
                ApiError.model_unavailable(f"{quoted(model.model_id)} is not deployed.")
            )
        refuse_missing_features(request, model)
        call = GenerationCall(
            model,
            request.prompt,
            request.messages,
            request.sampling,
            request.inference_id,
            tools=request.tools,
            reasoning=request.reasoning,
        )
        try:
            return handle.generate.remote(call)
        except Exception as exc:
            raise backend_down("decoder deployment", exc, self._limits.retry_after_s) from exc

    async def _record_generation(
        self,
        request: InferenceRequest,
        created_at: Any,
        model: ResolvedModel | None,
        tally: GenerationTally,
        started: float,
    ) -> None:
        latency = (time.perf_counter() - started) * 1000
        if tally.first_output_at is not None:
            ttft_ms = (tally.first_output_at - started) * 1000
            metrics.first_token(model.model_id if model else None, request.source, ttft_ms)
        await self.record(
            request,
            billing=records.billing_row(
                request,
                created_at,
                model=model,
                input_tokens=tally.uncached_tokens,
                output_tokens=tally.completion_tokens,
                cache_read_tokens=tally.cached_tokens,
                failed=tally.error is not None,
            ),
            history=records.inference_row(
                request,
                created_at,
                model=model,
                output=tally.output(request.sampling.n),
                input_tokens=tally.uncached_tokens,
                output_tokens=tally.completion_tokens,
                cache_read_tokens=tally.cached_tokens,
                error=tally.error,
                latency_ms=latency,
            ),
        )

    async def count_tokens(self, request: InferenceRequest) -> tuple[ResolvedModel, int]:
        model = await self.resolve(request.model_id)
        handle = self._decoders.get(model.model_id)
        if handle is None:
            raise ApiException(
                ApiError.invalid(f"{quoted(request.model_id)} is not a decoder here.", "model", 400)
            )
        counted = await self.call(
            handle.count_tokens.remote(
                request.prompt, request.messages, request.tools, request.reasoning
            ),
            "decoder deployment",
        )
        if isinstance(counted, ApiError):
            raise ApiException(counted)
        return model, counted

    async def list_models(self, include_jobs: bool) -> list[dict[str, Any]]:
        return await self.call(self._resolver.list_models.remote(include_jobs), "model resolver")

    async def history(self, method: str, *args: Any) -> Any:
        return await self.call(getattr(self._recorder, method).remote(*args), "history store")

    async def readiness(self) -> dict[str, Any]:
        return await self.call(self._resolver.readiness.remote(), "model resolver")
