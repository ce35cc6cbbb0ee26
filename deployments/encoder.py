"""Encoder deployment: GLiNER2 models multiplexed per id, requests batched per replica.

Thin by design: the engine (import path from config) does the model work; this class owns
loading through Ray Serve model multiplexing, dynamic batching and error isolation.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from app import metrics
from app.config import EncoderConfig
from app.engines.protocols import EncoderEngine, EncoderEngineClass, LoadedEncoderModel
from app.protocol import ApiError, ApiException, ExtractionCall, ExtractionOutcome, ResolvedModel

logger = logging.getLogger("ray.serve")
REPORT_INTERVAL_S = 10.0


def import_object(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass
class _Item:
    loaded: LoadedEncoderModel
    call: ExtractionCall
    schema: Any  # the engine's compiled schema
    received: float
    waiting: bool = True  # counted in the queue gauge until an engine call takes it


def _count_texts(items: list[_Item]) -> int:
    return sum(len(item.call.texts) for item in items)


class EncoderDeployment:
    async def __init__(
        self,
        config: EncoderConfig,
        allow_hub_downloads: bool,
        resolver: DeploymentHandle | None = None,
    ) -> None:
        engine_cls: EncoderEngineClass = import_object(config.engine)
        self._engine: EncoderEngine = engine_cls(
            device=config.device,
            dtype=config.dtype,
            torch_threads=config.torch_threads,
            allow_hub_downloads=allow_hub_downloads,
            span_decoding=config.span_decoding,
            disentangled_flash=config.disentangled_flash,
        )
        self._config = config
        self._resolver = resolver
        self._pending: dict[str, ResolvedModel] = {}
        self._loaded: weakref.WeakValueDictionary[str, LoadedEncoderModel] = (
            weakref.WeakValueDictionary()
        )
        self._engine_lock = asyncio.Lock()
        self._batch_sizes: deque[int] = deque(maxlen=2048)
        self._queued_texts = 0  # accepted, no engine call started on them yet

        async def load(model_key: str) -> Any:  # a plain function: multiplexing keys on it
            return await self._load(model_key)

        self._get_model = serve.multiplexed(
            max_num_models_per_replica=config.max_models_per_replica
        )(load)
        self._batched.set_max_batch_size(config.max_batch_size)
        self._batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        context = serve.get_replica_context()
        self._replica_id = context.replica_id.unique_id if context else "local"
        self._background = asyncio.create_task(self._preload_and_report())

    # ---- model loading -------------------------------------------------------------------

    async def _load(self, model_key: str) -> Any:
        model = self._pending[model_key]
        loaded = await asyncio.to_thread(self._engine.load, model)
        self._loaded[model_key] = loaded
        self._report_loaded()
        return loaded

    async def _get(self, model: ResolvedModel) -> Any:
        self._pending[model.model_key] = model
        return await self._get_model(model.model_key)

    async def _preload_and_report(self) -> None:
        for model_id in self._config.preload:
            resolved = await self._resolver.resolve.remote(model_id) if self._resolver else None
            if not isinstance(resolved, ResolvedModel):
                logger.error(
                    "preload of %s skipped: %s", model_id, getattr(resolved, "message", "")
                )
                continue
            try:
                await self._get(resolved)
            except Exception as exc:  # keep serving the models that did load
                logger.error("preload of %s failed: %s", model_id, exc)
        while True:
            self._report_loaded()
            await asyncio.sleep(REPORT_INTERVAL_S)

    def _report_loaded(self) -> None:
        if self._resolver is not None:
            self._resolver.report_loaded.remote(self._replica_id, sorted(self._loaded.keys()))

    # ---- requests ------------------------------------------------------------------------

    async def extract_many(self, calls: list[ExtractionCall]) -> list[ExtractionOutcome | ApiError]:
        """Calls an ingress gathered (app/grouping.py); each still joins the batch queue on
        its own, so they share engine batches with every other ingress's calls."""
        return list(await asyncio.gather(*(self.extract(call) for call in calls)))

    async def extract(self, call: ExtractionCall) -> ExtractionOutcome | ApiError:
        try:
            loaded = await self._get(call.model)
            schema = self._engine.build_schema(call.schema)
        except ApiException as exc:
            return exc.error
        item = _Item(loaded, call, schema, time.perf_counter())
        self._queued_texts += len(call.texts)
        metrics.encoder_queue(self._queued_texts)
        try:
            if len(call.texts) > self._config.max_batch_size:
                # Too big for the batch queue: it is a batch of its own already.
                return (await self._run([item]))[0]
            return await self._batched(item)
        finally:
            self._dequeue([item])  # one that never reached the engine (cancelled, failed)

    def _dequeue(self, items: list[_Item]) -> None:
        """Items an engine call has taken leave the queue gauge (each once)."""
        texts = sum(len(item.call.texts) for item in items if item.waiting)
        for item in items:
            item.waiting = False
        if texts:
            self._queued_texts -= texts
            metrics.encoder_queue(self._queued_texts)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01, batch_size_fn=_count_texts)
    async def _batched(self, items: list[_Item]) -> list[ExtractionOutcome | ApiError]:
        return await self._run(items)

    async def _run(self, items: list[_Item]) -> list[ExtractionOutcome | ApiError]:
        texts = _count_texts(items)
        self._batch_sizes.append(texts)
        metrics.encoder_batch(texts)
        logger.debug("encoder batch: %d requests, %d texts", len(items), texts)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, item in enumerate(items):
            key = (item.loaded.key, item.call.options)
            groups.setdefault(key, []).append(index)
        outcomes: list[ExtractionOutcome | ApiError] = [ApiError.internal()] * len(items)
        for indexes in groups.values():
            group = [items[i] for i in indexes]
            for i, outcome in zip(indexes, await self._run_group(group), strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _run_group(self, group: list[_Item]) -> list[ExtractionOutcome | ApiError]:
        """One engine call for requests sharing a model and options; isolate a failure."""
        loaded, options = group[0].loaded, group[0].call.options
        texts = [text for item in group for text in item.call.texts]
        schemas = [item.schema for item in group for _ in item.call.texts]
        started = time.perf_counter()
        try:
            async with self._engine_lock:
                self._dequeue(group)
                results = await asyncio.to_thread(
                    self._engine.extract,
                    loaded,
                    texts,
                    schemas,
                    options,
                    self._config.max_batch_size,
                )
                counts = await asyncio.to_thread(
                    lambda: [loaded.count_tokens(item.call.texts) for item in group]
                )
        except Exception as exc:
            if len(group) > 1:
                return [(await self._run_group([item]))[0] for item in group]
            logger.exception("extraction failed for model %s", loaded.key)
            return [ApiError.internal(f"extraction failed: {type(exc).__name__}")]
        engine_ms = (time.perf_counter() - started) * 1000
        outcomes: list[ExtractionOutcome | ApiError] = []
        offset = 0
        for item, tokens in zip(group, counts, strict=True):
            mine = results[offset : offset + len(item.call.texts)]
            offset += len(mine)
            refused = next((r for r in mine if isinstance(r, ApiError)), None)
            outcomes.append(refused or ExtractionOutcome(mine, tokens, engine_ms))
        return outcomes

    # ---- introspection -------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        sizes = list(self._batch_sizes)
        return {
            "replica_id": self._replica_id,
            "device": self._engine.device,
            "dtype": self._engine.dtype,
            "loaded_models": sorted(self._loaded.keys()),
            "batches": len(sizes),
            "batch_texts": sizes,
            "batch_texts_histogram": dict(Counter(sizes)),
        }
