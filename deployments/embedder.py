"""Embedder deployment: sentence-embedding models, requests batched per replica.

Thin by design: the engine (import path from config) tokenizes, checks and runs the model;
this class loads the configured models, batches calls with `@serve.batch`, isolates failures
and reports what it holds to the resolver. It never logs an input: `store: false` inputs
must not reach the logs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from app.config import EmbedderConfig
from app.embedding_protocol import EmbeddingCall, EmbeddingOutcome
from app.engines.protocols import EmbeddingEngine, EmbeddingEngineClass, LoadedEmbeddingModel
from app.protocol import ApiError, quoted

logger = logging.getLogger("ray.serve")
REPORT_INTERVAL_S = 10.0
WHAT = "embedder deployment"  # how the resolver and the ingress name this deployment


def import_object(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass
class _Item:
    loaded: LoadedEmbeddingModel
    pieces: list[list[int]]  # each input's token ids, special tokens not included


def _count_inputs(items: list[_Item]) -> int:
    return sum(len(item.pieces) for item in items)


class EmbedderDeployment:
    async def __init__(
        self,
        config: EmbedderConfig,
        weights: dict[str, str],
        resolver: DeploymentHandle | None = None,
    ) -> None:
        """`weights`: catalog id -> the folder (or hub id) its weights load from."""
        engine_cls: EmbeddingEngineClass = import_object(config.engine)
        self._engine: EmbeddingEngine = engine_cls(
            device=config.device,
            dtype=config.dtype,
            torch_threads=config.torch_threads,
            max_batch_size=config.max_batch_size,
        )
        self._config = config
        self._resolver = resolver
        self._loaded: dict[str, LoadedEmbeddingModel] = {}
        self._failed: dict[str, str] = {}
        for model_id, path in weights.items():
            try:
                self._loaded[model_id] = await asyncio.to_thread(self._engine.load, model_id, path)
            except Exception as exc:  # serve the models that did load; say why this one is not
                logger.error("embedding model %s failed to load: %s", model_id, exc)
                self._failed[model_id] = f"{type(exc).__name__}: {exc}"
        self._engine_lock = asyncio.Lock()
        self._batched.set_max_batch_size(config.max_batch_size)
        self._batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        context = serve.get_replica_context()
        self._replica_id = "embedder:" + (context.replica_id.unique_id if context else "local")
        self._reporting = asyncio.create_task(self._report_forever())

    async def _report_forever(self) -> None:
        while True:
            if self._resolver is not None:
                self._resolver.report_loaded.remote(self._replica_id, sorted(self._loaded), WHAT)
            await asyncio.sleep(REPORT_INTERVAL_S)

    async def embed(self, call: EmbeddingCall) -> EmbeddingOutcome | ApiError:
        started = time.perf_counter()
        loaded = self._loaded.get(call.model.model_key)
        if loaded is None:
            why = self._failed.get(call.model.model_key, "it is not configured here")
            return ApiError.model_unavailable(
                f"Embedding model {quoted(call.model.requested_id)} cannot be served: {why}."
            )
        try:
            pieces = await asyncio.to_thread(
                self._engine.pieces, loaded, call.texts, call.token_ids, call.dimensions
            )
        except Exception as exc:
            logger.error("tokenizing for %s failed: %s", loaded.key, type(exc).__name__)
            return ApiError.internal(f"tokenizing failed: {type(exc).__name__}")
        if isinstance(pieces, ApiError):
            return pieces
        item = _Item(loaded, pieces)
        if len(pieces) > self._config.max_batch_size:  # a batch of its own already
            vectors = (await self._run([item]))[0]
        else:
            vectors = await self._batched(item)
        if isinstance(vectors, ApiError):
            return vectors
        tokens = sum(len(p) for p in pieces)
        return EmbeddingOutcome(vectors, tokens, (time.perf_counter() - started) * 1000)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005, batch_size_fn=_count_inputs)
    async def _batched(self, items: list[_Item]) -> list[Any]:
        return await self._run(items)

    async def _run(self, items: list[_Item]) -> list[Any]:
        """One engine call per model among the batch's requests; a failure is isolated to
        the request that caused it."""
        results: list[Any] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.loaded.key, []).append(index)
        for indexes in groups.values():
            loaded = items[indexes[0]].loaded
            pieces = [p for i in indexes for p in items[i].pieces]
            try:
                async with self._engine_lock:
                    vectors = await asyncio.to_thread(self._engine.embed, loaded, pieces)
            except Exception as exc:
                if len(indexes) > 1:
                    for i in indexes:
                        results[i] = (await self._run([items[i]]))[0]
                    continue
                logger.error("embedding failed for model %s: %s", loaded.key, type(exc).__name__)
                results[indexes[0]] = ApiError.internal(f"embedding failed: {type(exc).__name__}")
                continue
            offset = 0
            for i in indexes:
                count = len(items[i].pieces)
                results[i] = vectors[offset : offset + count]
                offset += count
        return results

    async def stats(self) -> dict[str, Any]:
        return {
            "replica_id": self._replica_id,
            "device": self._engine.device,
            "dtype": self._engine.dtype,
            "loaded_models": sorted(self._loaded),
            "failed_models": dict(self._failed),
        }
