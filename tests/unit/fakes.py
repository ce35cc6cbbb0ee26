"""Fake engines (app/engines/protocols.py) and Ray Serve stand-ins for in-process unit tests.

The fakes are small but honest: they take exactly the constructor arguments the deployments
pass (a drift fails at construction), record every call, and fail, refuse or stall on the
inputs a test chooses. Deployments load them by import path, as config does:
`EncoderConfig(engine=FAKE_ENCODER)`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.protocol import (
    ApiError,
    ApiException,
    ChoiceFinished,
    ExtractOptions,
    GenerationEvent,
    GenerationStarted,
    ResolvedModel,
    SamplingOptions,
    TokenDelta,
    ToolUse,
)

FAKE_ENCODER = "tests.unit.fakes:FakeEncoderEngine"
FAKE_DECODER = "tests.unit.fakes:FakeDecoderEngine"
FAKE_EMBEDDER = "tests.unit.fakes:FakeEmbeddingEngine"


class EngineFailure(RuntimeError):
    """What a fake engine raises for an input a test marked as failing."""


# ---- encoder -------------------------------------------------------------------------------


@dataclass
class FakeLoadedEncoder:
    key: str

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(text.split()) for text in texts)


@dataclass(frozen=True)
class FakeSchema:
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ExtractCallRecord:
    model_key: str
    texts: list[str]
    options: ExtractOptions
    batch_size: int


class FakeEncoderEngine:
    """Extraction that echoes: each text's result names the text and its schema's labels,
    so a test can tell which request's answer reached which caller."""

    def __init__(
        self,
        *,
        device: str,
        dtype: str,
        torch_threads: int | None,
        allow_hub_downloads: bool,
        span_decoding: str,
        disentangled_flash: bool,
    ) -> None:
        self.device = "cpu" if device == "auto" else device
        self.dtype = "float32" if dtype == "auto" else dtype
        self.failing_texts: set[str] = set()  # any engine call holding one of these raises
        self.refused_texts: set[str] = set()  # answered with that text's own ApiError
        self.unloadable: set[str] = set()  # model keys whose load raises a 409
        self.delay_s = 0.0  # per engine call, in the worker thread like real model work
        self.loads: list[str] = []
        self.calls: list[ExtractCallRecord] = []

    def load(self, model: ResolvedModel) -> FakeLoadedEncoder:
        self.loads.append(model.model_key)
        if model.model_key in self.unloadable:
            raise ApiException(ApiError.model_unavailable(f"{model.model_key} cannot load"))
        return FakeLoadedEncoder(model.model_key)

    def build_schema(self, schema: dict[str, Any]) -> FakeSchema:
        entities = schema.get("entities")
        if not isinstance(entities, list) or not entities:
            raise ApiException(ApiError.invalid("schema rejected: no entities", "schema"))
        return FakeSchema(tuple(entities))

    def extract(
        self,
        loaded: FakeLoadedEncoder,
        texts: list[str],
        schemas: list[FakeSchema],
        options: ExtractOptions,
        batch_size: int,
    ) -> list[dict[str, Any] | ApiError]:
        self.calls.append(ExtractCallRecord(loaded.key, list(texts), options, batch_size))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.failing_texts.intersection(texts):
            raise EngineFailure("a text this engine was told to fail on")
        results: list[dict[str, Any] | ApiError] = []
        for text, schema in zip(texts, schemas, strict=True):
            if text in self.refused_texts:
                results.append(ApiError.invalid(f"{text!r} leaves no room", "text", status=400))
            else:
                results.append({"text": text, "labels": list(schema.labels)})
        return results


# ---- decoder -------------------------------------------------------------------------------


class FakeDecoderEngine:
    """Streams GenerationStarted, one TokenDelta per word of `reply`, then ChoiceFinished.

    Tracks what a real engine must: which requests are running, and which were aborted
    (their stream closed before it finished)."""

    def __init__(
        self,
        model_dir: str,
        *,
        dtype: str,
        max_model_len: int,
        gpu_memory_utilization: float,
        enforce_eager: bool,
        tensor_parallel_size: int,
        cpu_kv_cache_gib: int,
        max_loras: int,
        max_lora_rank: int,
        no_op_adapter_dir: str | None,
        reasoning_parser: str | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.reasoning_parser = reasoning_parser
        self.reply = ["Hello", " there", " friend"]
        self.token_delay_s = 0.0  # before each token: a slow engine the client can leave
        self.fail_after_tokens: int | None = None  # raise EngineFailure after this many
        self.fail_at_end = False  # raise instead of finishing
        self.refuse_render: ApiError | None = None
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.finished: list[str] = []
        self.generate_calls: list[dict[str, Any]] = []

    def render(
        self,
        prompt: str | None,
        messages: list[dict[str, Any]] | None,
        tools: ToolUse | None = None,
        reasoning: bool = False,
    ) -> str:
        if self.refuse_render is not None:
            raise ApiException(self.refuse_render)
        if messages is None:
            return prompt or ""
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages)

    async def generate(
        self,
        prompt: str,
        options: SamplingOptions,
        request_id: str,
        adapter_dir: str | None = None,
        *,
        tools: ToolUse | None = None,
        reasoning: bool = False,
        reasoning_parser: str | None = None,
        tool_parser: str | None = None,
    ) -> AsyncIterator[GenerationEvent]:
        self.generate_calls.append(
            {"prompt": prompt, "request_id": request_id, "adapter_dir": adapter_dir}
        )
        self.running.add(request_id)
        done = False
        try:
            yield GenerationStarted(self.count_tokens(prompt), prompt)
            for sent, word in enumerate(self.reply):
                await asyncio.sleep(self.token_delay_s)  # an engine step
                if self.fail_after_tokens is not None and sent >= self.fail_after_tokens:
                    raise EngineFailure("the engine died mid-generation")
                yield TokenDelta(0, word, 1)
            if self.fail_at_end:  # at once after the last token, no engine step between
                raise EngineFailure("the engine died after its last token")
            yield ChoiceFinished(0, "stop")
            done = True
        finally:
            self.running.discard(request_id)
            (self.finished if done else self.aborted).append(request_id)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def unfinished_requests(self) -> int:
        return len(self.running)


# ---- embedder ------------------------------------------------------------------------------


@dataclass
class FakeLoadedEmbedder:
    key: str
    dimensions: int = 4


class FakeEmbeddingEngine:
    """Token ids are the text's code points; a vector is [length, first id, 0, 0]."""

    def __init__(
        self, *, device: str, dtype: str, torch_threads: int | None, max_batch_size: int
    ) -> None:
        self.device = "cpu" if device == "auto" else device
        self.dtype = dtype
        self.unloadable: set[str] = set()
        self.failing_lengths: set[int] = set()  # an engine call holding such an input raises
        self.embed_calls: list[list[list[int]]] = []

    def load(self, key: str, path: str) -> FakeLoadedEmbedder:
        if key in self.unloadable:
            raise OSError(f"no weights at {path}")
        return FakeLoadedEmbedder(key)

    def pieces(
        self,
        loaded: FakeLoadedEmbedder,
        texts: list[str] | None,
        token_ids: list[list[int]] | None,
        dimensions: int | None,
    ) -> list[list[int]] | ApiError:
        if dimensions is not None and dimensions != loaded.dimensions:
            return ApiError.invalid("wrong dimensions", "dimensions", status=400)
        if texts is not None:
            return [[ord(c) for c in text] for text in texts]
        return [list(ids) for ids in token_ids or []]

    def embed(self, loaded: FakeLoadedEmbedder, pieces: list[list[int]]) -> Any:
        self.embed_calls.append([list(p) for p in pieces])
        if any(len(p) in self.failing_lengths for p in pieces):
            raise EngineFailure("an input this engine was told to fail on")
        rows = [[len(p), p[0] if p else 0, 0, 0] for p in pieces]
        return np.asarray(rows, dtype=np.float32).reshape(len(pieces), loaded.dimensions)


# ---- Ray Serve stand-ins -------------------------------------------------------------------


def fake_replica_context(max_ongoing_requests: int = 1000) -> SimpleNamespace:
    """What `serve.get_replica_context()` gives a deployment and `@serve.batch` reads."""
    return SimpleNamespace(
        replica_id=SimpleNamespace(unique_id="unit-test-replica"),
        _deployment_config=SimpleNamespace(max_ongoing_requests=max_ongoing_requests),
    )


def reset_batch_queue(batched: Any) -> None:
    """Give a `@serve.batch` method a new queue. Ray keeps one per decorated function, bound
    to the event loop of its first call: right in a replica (one loop for life), a hang in
    tests that start a new loop (asyncio.run) per test."""
    batched.set_max_batch_size.__self__._queue = None


class LocalMultiplexer:
    """Stands in for `serve.multiplexed` outside a replica: one load per key, kept (no LRU;
    eviction and routing are Ray Serve's, checked by the integration tests)."""

    def __init__(self, load: Callable[[str], Awaitable[Any]]) -> None:
        self._load = load
        self._loading: dict[str, asyncio.Task[Any]] = {}
        self.keys_asked: list[str] = []

    async def __call__(self, key: str) -> Any:
        self.keys_asked.append(key)
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.ensure_future(self._load(key))
        try:
            return await asyncio.shield(task)
        except Exception:
            self._loading.pop(key, None)  # as Serve does: a failed load is tried again
            raise


class FakeResponse:
    """What a DeploymentResponse(Generator) offers the gateway: awaitable, or iterable for
    a stream; `cancel()` is recorded."""

    def __init__(self, value: Any = None, error: Exception | None = None, items: Any = ()):
        self.value, self.error, self.items = value, error, list(items)
        self.cancelled = False
        self.item_delay_s = 0.0

    async def _fetch_future_result_async(self) -> None:
        return None

    def cancel(self) -> None:
        self.cancelled = True

    def __await__(self) -> Any:
        async def result() -> Any:
            if self.error is not None:
                raise self.error
            return self.value

        return result().__await__()

    async def _stream(self) -> AsyncIterator[Any]:
        for item in self.items:
            await asyncio.sleep(self.item_delay_s)
            yield item
        if self.error is not None:
            raise self.error

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._stream()


class FakeHandle:
    """A deployment handle whose methods are plain callables returning FakeResponses;
    every `.remote(...)` call is recorded as (method, args)."""

    def __init__(self, **methods: Callable[..., FakeResponse]) -> None:
        self.methods = methods
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.options_seen: list[dict[str, Any]] = []

    def options(self, **options: Any) -> FakeHandle:
        self.options_seen.append(options)
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.methods:
            raise AttributeError(name)
        method, calls = self.methods[name], self.calls

        class Method:
            @staticmethod
            def remote(*args: Any) -> FakeResponse:
                calls.append((name, args))
                return method(*args)

        return Method
